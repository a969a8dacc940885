//! The KeyValue data plane: every call is forwarded as encoded
//! ([`crate::forward`]) after its request passes the namespace's limits
//! (a key, a value and its TTL; a Scan's prefix like a key, its cursor's
//! length — what the cursor holds is the pattern's to check).

use prism_proto::wire::requests;

use crate::{
    config::PatternKind::Keyvalue,
    forward::{Method, Table, method},
};

pub(crate) struct KeyValueTable;

impl Table for KeyValueTable {
    const SERVICE: &'static str = "prism.keyvalue.v1.KeyValue";
    const METHODS: &'static [Method] = &[
        method!("prism.keyvalue.v1.KeyValue", "Set", Keyvalue, requests::set),
        method!("prism.keyvalue.v1.KeyValue", "Get", Keyvalue, requests::key),
        method!(
            "prism.keyvalue.v1.KeyValue",
            "Delete",
            Keyvalue,
            requests::key
        ),
        method!(
            "prism.keyvalue.v1.KeyValue",
            "Exists",
            Keyvalue,
            requests::key
        ),
        method!(
            "prism.keyvalue.v1.KeyValue",
            "Scan",
            Keyvalue,
            requests::scan
        ),
    ];
}

#[cfg(test)]
mod tests {
    use prism_proto::FILE_DESCRIPTOR_SET;
    use prost::Message;

    use super::*;

    /// Every method the `.proto` defines is forwarded, on its own path.
    #[test]
    fn the_table_covers_the_service() {
        let set = prost_types::FileDescriptorSet::decode(FILE_DESCRIPTOR_SET).unwrap();
        let service = set
            .file
            .iter()
            .flat_map(|f| f.service.iter().map(move |s| (f.package(), s)))
            .find(|(package, s)| format!("{package}.{}", s.name()) == KeyValueTable::SERVICE)
            .unwrap()
            .1;
        let defined: Vec<String> = service
            .method
            .iter()
            .map(|m| format!("/{}/{}", KeyValueTable::SERVICE, m.name()))
            .collect();
        let forwarded: Vec<&str> = KeyValueTable::METHODS.iter().map(|m| m.path).collect();
        assert_eq!(defined, forwarded);
    }
}
