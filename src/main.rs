fn main() -> std::process::ExitCode {
    crossprov::cli::run()
}
