// See prism-proxy's main.rs: less CPU for the many small allocations per call.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> anyhow::Result<()> {
    let args = prism_pattern_sdk::Args::parse_for("prism-memstore");
    args.runtime()?.block_on(async {
        let _guard =
            prism_observability::init(&prism_observability::Settings::from_env("prism-memstore"));
        prism_memstore::run(args).await
    })?;
    Ok(())
}
