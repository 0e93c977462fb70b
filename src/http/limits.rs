//! Rate limits (governor, in memory, per process): per client IP on every API request, per
//! user once authenticated, and much tighter on login attempts (per IP and per email).

use std::hash::Hash;
use std::net::IpAddr;
use std::num::NonZeroU32;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};

use super::error::ApiError;
use crate::config::ServerSettings;

pub struct RateLimits {
    per_ip: DefaultKeyedRateLimiter<IpAddr>,
    /// `/readyz` and `/metrics`, per client IP.
    probes: DefaultKeyedRateLimiter<IpAddr>,
    per_user: DefaultKeyedRateLimiter<i64>,
    login: DefaultKeyedRateLimiter<String>,
    /// Registrations, per client IP, at the login quota.
    register: DefaultKeyedRateLimiter<IpAddr>,
    clock: DefaultClock,
    pub trust_forwarded_for: bool,
}

impl std::fmt::Debug for RateLimits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RateLimits")
    }
}

/// The unit a client is limited by: its IPv4 address, or its IPv6 /64 (one subscriber's
/// allocation: counting each of its addresses apart would give it endless budgets).
#[must_use]
pub fn client_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(std::net::Ipv6Addr::from(v6.to_bits() & !u128::from(u64::MAX))),
        },
    }
}

fn per_minute(n: u32) -> Quota {
    // Validated as > 0 at start-up; fall back to 1 rather than panic.
    Quota::per_minute(NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN))
}

impl RateLimits {
    #[must_use]
    pub fn new(s: &ServerSettings) -> Self {
        Self {
            per_ip: DefaultKeyedRateLimiter::keyed(per_minute(s.rate_limit_per_ip_per_minute)),
            probes: DefaultKeyedRateLimiter::keyed(per_minute(s.rate_limit_per_ip_per_minute)),
            per_user: DefaultKeyedRateLimiter::keyed(per_minute(s.rate_limit_per_user_per_minute)),
            login: DefaultKeyedRateLimiter::keyed(per_minute(s.login_attempts_per_minute)),
            register: DefaultKeyedRateLimiter::keyed(per_minute(s.login_attempts_per_minute)),
            clock: DefaultClock::default(),
            trust_forwarded_for: s.trust_forwarded_for,
        }
    }

    fn check<K: Hash + Eq + Clone>(
        &self,
        limiter: &DefaultKeyedRateLimiter<K>,
        key: &K,
    ) -> Result<(), ApiError> {
        limiter.check_key(key).map_err(|not_until| {
            let wait = not_until.wait_time_from(self.clock.now());
            ApiError::TooManyRequests {
                retry_after_secs: wait.as_secs() + u64::from(wait.subsec_nanos() > 0),
            }
        })
    }

    /// # Errors
    /// [`ApiError::TooManyRequests`] with the wait.
    pub fn check_ip(&self, ip: IpAddr) -> Result<(), ApiError> {
        self.check(&self.per_ip, &client_key(ip))
    }

    /// `/readyz` and `/metrics`: the same quota per client IP, in a bucket of their own, so API
    /// traffic from an address (a proxy's) never has a load balancer's probe refused.
    ///
    /// # Errors
    /// [`ApiError::TooManyRequests`] with the wait.
    pub fn check_probe(&self, ip: IpAddr) -> Result<(), ApiError> {
        self.check(&self.probes, &client_key(ip))
    }

    /// # Errors
    /// [`ApiError::TooManyRequests`] with the wait.
    pub fn check_user(&self, user_id: i64) -> Result<(), ApiError> {
        self.check(&self.per_user, &user_id)
    }

    /// Login attempts count against both the client and the account tried (`email` as
    /// stored: trimmed, lower case).
    ///
    /// # Errors
    /// [`ApiError::TooManyRequests`] with the wait.
    pub fn check_login(&self, ip: IpAddr, email: &str) -> Result<(), ApiError> {
        self.check(&self.login, &format!("ip:{}", client_key(ip)))?;
        self.check(&self.login, &format!("email:{}", email.trim().to_ascii_lowercase()))
    }

    /// Registrations count per client at the login quota, in a bucket of their own (a sign-in
    /// right after registering is not refused for it).
    ///
    /// # Errors
    /// [`ApiError::TooManyRequests`] with the wait.
    pub fn check_register(&self, ip: IpAddr) -> Result<(), ApiError> {
        self.check(&self.register, &client_key(ip))
    }

    /// Forgets idle keys so memory stays bounded.
    pub fn shrink(&self) {
        self.per_ip.retain_recent();
        self.probes.retain_recent();
        self.per_user.retain_recent();
        self.login.retain_recent();
        self.register.retain_recent();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_clients_are_limited_by_their_slash_64() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().expect("ip");
        let b: IpAddr = "2001:db8:1:2:ffff:1:2:3".parse().expect("ip");
        let other: IpAddr = "2001:db8:1:3::1".parse().expect("ip");
        assert_eq!(client_key(a), client_key(b));
        assert_ne!(client_key(a), client_key(other));
        let v4: IpAddr = "198.51.100.7".parse().expect("ip");
        assert_eq!(client_key(v4), v4);
        let mapped: IpAddr = "::ffff:198.51.100.7".parse().expect("ip");
        assert_eq!(client_key(mapped), v4);
    }
}
