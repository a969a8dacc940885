//! Prism's wire contract: the generated gRPC code for every `prism.*.v1`
//! package, the descriptor set for server reflection, conversions between
//! JSON config and `google.protobuf.Struct`, the codec the generated
//! services use, and the field rules every edge checks the same way (each
//! returns a [`FieldError`]; each server maps it to `INVALID_ARGUMENT`).
//!
//! Modules: [`lifecycle`], [`keyvalue`], [`pubsub`], [`admin`] (generated),
//! [`codec`], [`field`] (the error and bounded quoting of client input),
//! [`json`], [`proto_json`] (the protobuf JSON mapping of admin replies),
//! [`limits`] (KeyValue), [`cursor`] (Scan cursors), [`topic`],
//! [`publish`] (payload, metadata, subscriber ids), [`batch`], [`filter`]
//! (the registry's filter language), [`registry`] (the registry's rules, and
//! its generated code in `registry::v1`), [`wire`] (requests read and checked
//! straight from their encoding, for forwarding them unchanged).

pub mod batch;
pub mod codec;
pub mod cursor;
pub mod field;
pub mod filter;
pub mod json;
pub mod limits;
pub mod proto_json;
pub mod publish;
pub mod registry;
pub mod topic;
pub mod wire;

pub use field::FieldError;

pub mod lifecycle {
    pub mod v1 {
        tonic::include_proto!("prism.lifecycle.v1");
    }
}

pub mod keyvalue {
    pub mod v1 {
        tonic::include_proto!("prism.keyvalue.v1");
    }
}

pub mod pubsub {
    pub mod v1 {
        tonic::include_proto!("prism.pubsub.v1");
    }
}

pub mod admin {
    pub mod v1 {
        tonic::include_proto!("prism.admin.v1");
    }
}

/// Encoded `FileDescriptorSet` of every Prism service, for server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("prism_descriptor");
