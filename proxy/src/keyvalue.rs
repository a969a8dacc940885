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
