//! The protobuf JSON mapping of the admin API's messages, for scripts
//! (`prismctl --json`): field names in lowerCamelCase, enums by name, 64-bit
//! integers as strings, default values left out. The mapping is read from
//! the descriptor set this crate already carries ([`crate::FILE_DESCRIPTOR_SET`])
//! rather than generated per type, so every message gets it for the cost of
//! naming itself ([`ProtoName`]).

use std::sync::OnceLock;

use prost_reflect::{DescriptorPool, DynamicMessage, SerializeOptions};

use crate::admin::v1 as admin;

/// A generated message and its full protobuf name.
pub trait ProtoName: prost::Message + Sized {
    const FULL_NAME: &'static str;
}

macro_rules! names {
    ($($ty:ident),* $(,)?) => {
        $(impl ProtoName for admin::$ty {
            const FULL_NAME: &'static str = concat!("prism.admin.v1.", stringify!($ty));
        })*
        #[cfg(test)]
        const ADMIN_NAMES: &[&str] = &[$(<admin::$ty as ProtoName>::FULL_NAME),*];
    };
}

names!(
    ListPatternsResponse,
    LatencyHistogram,
    ListEventsResponse,
    Event,
    RestartPatternResponse,
    ReloadPatternResponse,
    ReloadConfigResponse,
    WhoAmIResponse,
    ListPatternLogsResponse,
    PatternLogLine,
    GetExemplarsResponse,
);

fn pool() -> &'static DescriptorPool {
    static POOL: OnceLock<DescriptorPool> = OnceLock::new();
    POOL.get_or_init(|| {
        // Written by this crate's build script from the same .proto files the
        // types are generated from; the tests below decode it.
        DescriptorPool::decode(crate::FILE_DESCRIPTOR_SET).expect("the built-in descriptor set")
    })
}

/// `message` in the protobuf JSON mapping. Fails only if the message does
/// not match its own descriptor, which the build rules out.
pub fn to_json<M: ProtoName>(message: &M) -> Result<serde_json::Value, serde_json::Error> {
    use serde::ser::Error;
    let descriptor = pool()
        .get_message_by_name(M::FULL_NAME)
        .ok_or_else(|| serde_json::Error::custom(format!("no descriptor for {}", M::FULL_NAME)))?;
    let dynamic = DynamicMessage::decode(descriptor, message.encode_to_vec().as_slice())
        .map_err(serde_json::Error::custom)?;
    dynamic.serialize_with_options(serde_json::value::Serializer, &SerializeOptions::new())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_named_message_is_in_the_descriptor_set() {
        for name in ADMIN_NAMES {
            assert!(pool().get_message_by_name(name).is_some(), "{name}");
        }
    }

    #[test]
    fn the_mapping_is_protobuf_json() {
        let reply = admin::ListPatternsResponse {
            patterns: vec![admin::PatternInfo {
                namespace: "default".into(),
                state: admin::PatternState::Running as i32,
                uptime_ms: 1500,
                ..Default::default()
            }],
            in_flight: 0,
            ..Default::default()
        };
        let json = to_json(&reply).unwrap();
        let pattern = &json["patterns"][0];
        assert_eq!(pattern["namespace"], "default");
        assert_eq!(pattern["state"], "RUNNING", "enums by name");
        assert_eq!(pattern["uptimeMs"], "1500", "camelCase, 64-bit as a string");
        assert!(pattern.get("pid").is_none(), "defaults left out");
        assert!(json.get("inFlight").is_none());
        let who = admin::WhoAmIResponse {
            auth_enabled: true,
            role: admin::AdminRole::Viewer as i32,
            ..Default::default()
        };
        let json = to_json(&who).unwrap();
        assert_eq!(json["authEnabled"], true);
        assert_eq!(json["role"], "ADMIN_ROLE_VIEWER");
    }
}
