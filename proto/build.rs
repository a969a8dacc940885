//! Compiles the `.proto` files with protox (no `protoc` needed) and writes the
//! descriptor set that server reflection serves.

use std::path::PathBuf;

use prost::Message;

const PROTOS: &[&str] = &[
    "proto/prism/lifecycle/v1/lifecycle.proto",
    "proto/prism/keyvalue/v1/keyvalue.proto",
    "proto/prism/pubsub/v1/pubsub.proto",
    "proto/prism/registry/v1/registry.proto",
    "proto/prism/admin/v1/admin.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto");
    let fds = protox::compile(PROTOS, ["proto"])?;
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(out_dir.join("prism_descriptor.bin"), fds.encode_to_vec())?;
    // Undecodable requests are the caller's fault: see `codec`.
    tonic_prost_build::configure()
        .codec_path("crate::codec::PrismCodec")
        .compile_fds(fds)?;
    Ok(())
}
