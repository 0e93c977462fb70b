//! Process metrics in the Prometheus text format: job outcomes and durations, HTTP requests and
//! latencies, and (filled in at scrape time) queue depth per queue and status.
//!
//! Owns: the metric registry. Uses: nothing else in the crate.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct JobLabels {
    queue: String,
    kind: String,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabels {
    queue: String,
    kind: String,
}

/// The HTTP methods the API answers; any other is refused (405) and counted as `other`, so
/// label values come from a closed set.
pub const KNOWN_METHODS: [&str; 7] = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];
/// [`KNOWN_METHODS`] as an `Allow` header value.
pub const KNOWN_METHODS_HEADER: &str = "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS";

/// The metrics label of `method`: itself when known, else `other`.
#[must_use]
pub fn method_label(method: &str) -> &'static str {
    KNOWN_METHODS.iter().find(|m| **m == method).copied().unwrap_or("other")
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HttpLabels {
    method: &'static str,
    route: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    method: &'static str,
    route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DepthLabels {
    queue: String,
    status: String,
}

/// How a job run ended, as counted in `audiencelens_jobs_total`.
#[derive(Debug, Clone, Copy)]
pub enum JobOutcome {
    Succeeded,
    Failed,
}

pub struct Metrics {
    registry: Registry,
    jobs: Family<JobLabels, Counter>,
    job_seconds: Family<KindLabels, Histogram>,
    http_requests: Family<HttpLabels, Counter>,
    http_seconds: Family<RouteLabels, Histogram>,
    queue_depth: Family<DepthLabels, Gauge>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    #[must_use]
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("audiencelens");
        let jobs = Family::<JobLabels, Counter>::default();
        let job_seconds = Family::<KindLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.001, 4.0, 10))
        });
        let http_requests = Family::<HttpLabels, Counter>::default();
        let http_seconds = Family::<RouteLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.0005, 2.5, 12))
        });
        let queue_depth = Family::<DepthLabels, Gauge>::default();
        registry.register("jobs", "Job runs finished, by queue, kind and outcome", jobs.clone());
        registry.register("job_duration_seconds", "Job run time", job_seconds.clone());
        registry.register("http_requests", "HTTP requests, by route and status", http_requests.clone());
        registry.register("http_request_duration_seconds", "HTTP latency", http_seconds.clone());
        registry.register("queue_jobs", "Jobs in the table, by queue and status", queue_depth.clone());
        Self { registry, jobs, job_seconds, http_requests, http_seconds, queue_depth }
    }

    pub fn job_finished(&self, queue: &str, kind: &str, outcome: JobOutcome, seconds: f64) {
        let outcome = match outcome {
            JobOutcome::Succeeded => "succeeded",
            JobOutcome::Failed => "failed",
        };
        self.jobs.get_or_create(&JobLabels { queue: queue.to_owned(), kind: kind.to_owned(), outcome }).inc();
        self.job_seconds
            .get_or_create(&KindLabels { queue: queue.to_owned(), kind: kind.to_owned() })
            .observe(seconds);
    }

    /// `route` is the matched route pattern, never the raw path (unbounded label values);
    /// `method` is counted through [`method_label`].
    pub fn http_request(&self, method: &str, route: &str, status: u16, seconds: f64) {
        let method = method_label(method);
        self.http_requests.get_or_create(&HttpLabels { method, route: route.to_owned(), status }).inc();
        self.http_seconds.get_or_create(&RouteLabels { method, route: route.to_owned() }).observe(seconds);
    }

    /// Renders everything, with queue depth as given (read from the database by the caller).
    #[must_use]
    pub fn render(&self, depths: &[(String, String, i64)]) -> String {
        self.queue_depth.clear();
        for (queue, status, count) in depths {
            self.queue_depth
                .get_or_create(&DepthLabels { queue: queue.clone(), status: status.clone() })
                .set(*count);
        }
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_all_families() {
        let m = Metrics::new();
        m.job_finished("scrape", "scrape_posts", JobOutcome::Succeeded, 0.2);
        m.http_request("GET", "/healthz", 200, 0.001);
        let text = m.render(&[("scrape".into(), "queued".into(), 7)]);
        for i in 0..100 {
            m.http_request(&format!("FOO{i}"), "unmatched", 405, 0.001);
        }
        let after = m.render(&[]);
        assert!(!after.contains("FOO"), "made-up methods are not label values");
        assert!(
            after.contains(
                "audiencelens_http_requests_total{method=\"other\",route=\"unmatched\",status=\"405\"} 100"
            ),
            "{after}"
        );
        assert!(
            text.contains(
                "audiencelens_jobs_total{queue=\"scrape\",kind=\"scrape_posts\",outcome=\"succeeded\"} 1"
            ),
            "{text}"
        );
        assert!(text.contains("audiencelens_queue_jobs{queue=\"scrape\",status=\"queued\"} 7"), "{text}");
        assert!(
            text.contains(
                "audiencelens_http_requests_total{method=\"GET\",route=\"/healthz\",status=\"200\"} 1"
            ),
            "{text}"
        );
    }
}
