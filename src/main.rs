//! The `triage` binary: the command line lives in the library (`triage::cli`).

fn main() -> anyhow::Result<()> {
    triage::cli::main()
}
