//! `hudstream`: every stage of the pipeline as a subcommand, or all of them at once
//! (the command line itself is `hudstream::cli`).

// Every request allocates (headers, bodies, records); glibc's malloc showed up as ~15% of the
// gateway's CPU in a perf profile.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    hudstream::cli::main()
}
