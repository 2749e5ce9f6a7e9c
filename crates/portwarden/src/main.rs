//! The `portwarden` binary: everything is in the library (`lib.rs`); this only hands over the
//! command line and exits with the code it returns.

fn main() {
    let code = portwarden::cli::run(std::env::args_os().collect());
    std::process::exit(code);
}
