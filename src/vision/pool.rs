//! A bounded set of workers, each holding its own sessions of the four networks (an `ort`
//! session runs one inference at a time). A caller checks one out for a picture and it returns
//! by itself when dropped; workers are built on first need, up to the configured number, so
//! parallelism across pictures needs no locks around inference.
//!
//! Owns: worker reuse and its bound. Uses: std sync only.

use std::ops::{Deref, DerefMut};
use std::sync::{Condvar, Mutex, PoisonError};

struct State<W> {
    idle: Vec<W>,
    created: usize,
}

pub struct Pool<W> {
    state: Mutex<State<W>>,
    returned: Condvar,
    max: usize,
}

impl<W> Pool<W> {
    /// A pool of at most `max` workers (at least one), starting with `first`.
    pub fn new(first: W, max: usize) -> Self {
        Self {
            state: Mutex::new(State { idle: vec![first], created: 1 }),
            returned: Condvar::new(),
            max: max.max(1),
        }
    }

    #[must_use]
    pub fn max(&self) -> usize {
        self.max
    }

    /// An idle worker, a new one from `build` while under the bound, or the next one returned.
    pub fn checkout<E>(&self, build: impl FnOnce() -> Result<W, E>) -> Result<Lease<'_, W>, E> {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        loop {
            if let Some(worker) = state.idle.pop() {
                return Ok(Lease { pool: self, worker: Some(worker) });
            }
            if state.created < self.max {
                state.created += 1;
                drop(state);
                // Built outside the lock: loading models takes a while.
                return match build() {
                    Ok(worker) => Ok(Lease { pool: self, worker: Some(worker) }),
                    Err(e) => {
                        self.state.lock().unwrap_or_else(PoisonError::into_inner).created -= 1;
                        self.returned.notify_one();
                        Err(e)
                    }
                };
            }
            state = self.returned.wait(state).unwrap_or_else(PoisonError::into_inner);
        }
    }
}

/// A checked-out worker; goes back to the pool when dropped.
pub struct Lease<'a, W> {
    pool: &'a Pool<W>,
    worker: Option<W>,
}

impl<W> Deref for Lease<'_, W> {
    type Target = W;
    fn deref(&self) -> &W {
        self.worker.as_ref().unwrap_or_else(|| unreachable!("a lease holds its worker until dropped"))
    }
}

impl<W> DerefMut for Lease<'_, W> {
    fn deref_mut(&mut self) -> &mut W {
        self.worker.as_mut().unwrap_or_else(|| unreachable!("a lease holds its worker until dropped"))
    }
}

impl<W> Drop for Lease<'_, W> {
    fn drop(&mut self) {
        if let Some(worker) = self.worker.take() {
            self.pool.state.lock().unwrap_or_else(PoisonError::into_inner).idle.push(worker);
            self.pool.returned.notify_one();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    #[test]
    fn workers_are_reused_and_bounded() {
        let count = AtomicUsize::new(1);
        let pool = Pool::new(0_usize, 2);
        let build = || -> Result<usize, ()> { Ok(count.fetch_add(1, Ordering::SeqCst)) };
        let a = pool.checkout(build).unwrap();
        let b = pool.checkout(build).unwrap();
        assert_eq!((*a, *b), (0, 1));
        drop(a);
        let c = pool.checkout(build).unwrap();
        assert_eq!(*c, 0, "the idle worker is reused");
        std::thread::scope(|s| {
            let waiter = s.spawn(|| *pool.checkout(build).unwrap());
            std::thread::sleep(std::time::Duration::from_millis(50));
            drop(b);
            assert_eq!(waiter.join().unwrap(), 1, "waits for a returned worker beyond the bound");
        });
        drop(c);
        assert_eq!(count.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn a_failed_build_frees_its_slot() {
        let pool = Pool::new(0_usize, 2);
        let _a = pool.checkout(|| Ok::<_, ()>(9)).unwrap();
        assert!(pool.checkout(|| Err::<usize, _>("no")).is_err());
        assert_eq!(*pool.checkout(|| Ok::<_, ()>(7)).unwrap(), 7);
    }
}
