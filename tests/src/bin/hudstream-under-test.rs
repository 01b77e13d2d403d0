//! The `hudstream` command line, built inside the end-to-end crate so its tests can run it as a
//! child process (`CARGO_BIN_EXE_hudstream-under-test`) and kill it with SIGKILL.

fn main() -> std::process::ExitCode {
    hudstream::cli::main()
}
