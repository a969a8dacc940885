// See prism-proxy's main.rs: less CPU for the many small allocations per call.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    prism_pattern_sdk::main(&prism_memstore::HELP, prism_memstore::run)
}
