//! How the engine spreads work over threads without owning any: the host
//! implements [`Parallel`] (hosted: [`crate::kernels::pool::WorkerPool`] on
//! `std::thread::scope` threads; in the image: kernel threads) and the engine
//! splits matmul rows into tasks.

/// Runs independent tasks, possibly on several threads.
pub trait Parallel: Sync {
    /// How many threads run tasks (1 for sequential).
    fn threads(&self) -> usize;
    /// Runs `task(i)` for every `i` in `0..n_tasks` and returns when all are done.
    fn run(&self, n_tasks: usize, task: &(dyn Fn(usize) + Sync));
}

/// Runs every task on the calling thread, in order.
#[derive(Debug, Clone, Copy, Default)]
pub struct Sequential;

impl Parallel for Sequential {
    fn threads(&self) -> usize {
        1
    }
    fn run(&self, n_tasks: usize, task: &(dyn Fn(usize) + Sync)) {
        (0..n_tasks).for_each(task)
    }
}
