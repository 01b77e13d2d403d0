//! The process's allocator is mimalloc (`main.rs`); this is the one setting a command changes.

/// mimalloc's `mi_option_purge_delay`: its position in `mi_option_e`, the same in mimalloc v2
/// and v3 (`libmimalloc-sys` names the options around it, 14 and 16, but not this one).
const PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Keeps memory this process frees mapped, instead of returning it to the system 10 ms later
/// (mimalloc's default). For a replay: it allocates and frees a batch of up to
/// `pipeline.replay_batch_max_bytes` about every second, and with the default the kernel mapped
/// and zeroed that memory afresh for every batch — a `perf` profile of `hud bench`'s replay
/// put ~15 % of its CPU in page faults, ~0.4 % with this. The process then stays at its peak,
/// which the replay's batch limits bound (about three batches).
pub fn keep_freed_memory() {
    // SAFETY: `mi_option_set` only stores the value; mimalloc reads it when it next purges.
    unsafe { libmimalloc_sys::mi_option_set(PURGE_DELAY, -1) }
}

/// Returns the memory this process has freed to the system now (mimalloc's `mi_collect`). For
/// `bench-read`, which reports how much the API's process grows while it loads its hot window:
/// freed memory kept mapped after generating the history would make that growth look smaller.
pub fn return_freed_memory() {
    // SAFETY: `mi_collect` may be called at any time from any thread; `true` also frees what
    // other threads abandoned.
    unsafe { libmimalloc_sys::mi_collect(true) }
}
