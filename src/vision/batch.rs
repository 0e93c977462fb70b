//! Parallel work over a list on plain std threads (no global pool): `threads` scoped workers
//! take items in order from a shared counter and the caller receives the outputs in input
//! order, as soon as each is next in line, to stream results and progress.
//!
//! Owns: ordered fan-out/fan-in. Uses: std only.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;

/// Applies `work` to every item on `threads` threads; `emit(index, output)` is called on the
/// calling thread in input order.
pub fn run_ordered<T, R, W, E>(items: &[T], threads: usize, work: W, mut emit: E)
where
    T: Sync,
    R: Send,
    W: Fn(&T) -> R + Sync,
    E: FnMut(usize, R),
{
    let threads = threads.clamp(1, items.len().max(1));
    let next = AtomicUsize::new(0);
    let (sender, receiver) = mpsc::channel::<(usize, R)>();
    std::thread::scope(|scope| {
        for _ in 0..threads {
            let sender = sender.clone();
            let (next, work) = (&next, &work);
            scope.spawn(move || {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(item) = items.get(i) else { break };
                    if sender.send((i, work(item))).is_err() {
                        break;
                    }
                }
            });
        }
        drop(sender);
        let mut pending = BTreeMap::new();
        let mut expected = 0;
        for (i, output) in receiver {
            pending.insert(i, output);
            while let Some(output) = pending.remove(&expected) {
                emit(expected, output);
                expected += 1;
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outputs_arrive_in_input_order() {
        let items: Vec<u64> = (0..200).collect();
        let mut seen = Vec::new();
        run_ordered(
            &items,
            4,
            |&i| {
                std::thread::sleep(std::time::Duration::from_micros((200 - i) * 20));
                i * 2
            },
            |index, out| seen.push((index, out)),
        );
        assert_eq!(seen, items.iter().map(|&i| (i as usize, i * 2)).collect::<Vec<_>>());
        run_ordered(&[] as &[u8], 3, |_| (), |_, ()| panic!("no items"));
    }
}
