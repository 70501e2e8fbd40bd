fn main() -> std::process::ExitCode {
    necmail::cli::main()
}
