//! Who may do what, as pure functions of the config: per-namespace read and
//! write lists, admin roles by principal name, and what each gRPC method
//! needs. Nothing here does I/O, so every decision is unit-tested.

use std::collections::HashMap;

use prism_auth::{Principal, PrincipalName};

use crate::config::{Config, auth::principals};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Permission {
    Read,
    Write,
}

impl Permission {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::Write => "write",
        }
    }
}

/// Admin-plane roles, each allowing what the ones below it do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Role {
    None,
    Viewer,
    Operator,
    Admin,
}

impl Role {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::None => "no role",
            Self::Viewer => "viewer",
            Self::Operator => "operator",
            Self::Admin => "admin",
        }
    }
}

/// What a call must show before it is served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Need {
    /// Health checks and reflection: open to anyone who can connect.
    Nothing,
    /// Any authenticated caller (WhoAmI).
    Caller,
    Namespace(Permission),
    Role(Role),
}

/// What a data-plane method needs. Unknown methods of Prism's services are
/// treated as writes, the stricter right.
pub(crate) fn data_need(path: &str) -> Need {
    let Some((service, method)) = path.trim_start_matches('/').split_once('/') else {
        return Need::Namespace(Permission::Write);
    };
    let read = match service {
        "grpc.health.v1.Health"
        | "grpc.reflection.v1.ServerReflection"
        | "grpc.reflection.v1alpha.ServerReflection" => return Need::Nothing,
        "prism.keyvalue.v1.KeyValue" => matches!(method, "Get" | "Exists" | "Scan"),
        "prism.pubsub.v1.PubSub" => matches!(method, "Subscribe" | "Unsubscribe"),
        "prism.registry.v1.MulticastRegistry" => matches!(method, "Get" | "Enumerate" | "Receive"),
        _ => false,
    };
    Need::Namespace(if read {
        Permission::Read
    } else {
        Permission::Write
    })
}

/// What an admin method needs. Unknown ones need `admin`.
pub(crate) fn admin_need(path: &str) -> Need {
    let Some((service, method)) = path.trim_start_matches('/').split_once('/') else {
        return Need::Role(Role::Admin);
    };
    match service {
        "grpc.health.v1.Health"
        | "grpc.reflection.v1.ServerReflection"
        | "grpc.reflection.v1alpha.ServerReflection" => Need::Nothing,
        "prism.admin.v1.Admin" => match method {
            "WhoAmI" => Need::Caller,
            "ListPatterns" | "WatchPatterns" | "GetLatency" | "ListEvents" | "WatchEvents" => {
                Need::Role(Role::Viewer)
            }
            "ListPatternLogs" | "WatchPatternLogs" => Need::Role(Role::Viewer),
            "GetExemplars" => Need::Role(Role::Viewer),
            "RestartPattern" | "ReloadPattern" => Need::Role(Role::Operator),
            // ReloadConfig, ApplyNamespace, DeleteNamespace and anything new.
            _ => Need::Role(Role::Admin),
        },
        _ => Need::Role(Role::Admin),
    }
}

/// Server-streaming methods: they end when the caller's token expires.
pub(crate) fn is_stream(path: &str) -> bool {
    matches!(
        path,
        "/prism.pubsub.v1.PubSub/Subscribe"
            | "/prism.registry.v1.MulticastRegistry/Receive"
            | "/prism.admin.v1.Admin/WatchPatterns"
            | "/prism.admin.v1.Admin/WatchEvents"
            | "/prism.admin.v1.Admin/WatchPatternLogs"
    )
}

#[derive(Debug, Default)]
struct Access {
    read: Vec<PrincipalName>,
    write: Vec<PrincipalName>,
}

/// The rules of one config.
#[derive(Debug, Default)]
pub(crate) struct Policy {
    namespaces: HashMap<String, Access>,
    /// Highest role first.
    roles: Vec<(Role, Vec<PrincipalName>)>,
}

impl Policy {
    /// The rules of a validated config (names that do not parse cannot
    /// occur there; they would be left out).
    pub(crate) fn from_config(config: &Config) -> Self {
        let names = |list: &[String]| principals("", list).unwrap_or_default();
        let namespaces = config
            .namespaces
            .iter()
            .map(|ns| {
                let access = Access {
                    read: names(&ns.access.read),
                    write: names(&ns.access.write),
                };
                (ns.name.clone(), access)
            })
            .collect();
        let roles = config
            .auth
            .as_ref()
            .map(|auth| {
                vec![
                    (Role::Admin, names(&auth.admin.admin)),
                    (Role::Operator, names(&auth.admin.operator)),
                    (Role::Viewer, names(&auth.admin.viewer)),
                ]
            })
            .unwrap_or_default();
        Self { namespaces, roles }
    }

    /// Whether `caller` may `permission` on `namespace` (an unknown
    /// namespace allows nobody, so its existence is not revealed).
    pub(crate) fn allows(
        &self,
        caller: &Principal,
        namespace: &str,
        permission: Permission,
    ) -> bool {
        self.namespaces.get(namespace).is_some_and(|access| {
            let list = match permission {
                Permission::Read => &access.read,
                Permission::Write => &access.write,
            };
            caller.matches_any(list)
        })
    }

    /// The highest admin role `caller` holds.
    pub(crate) fn role(&self, caller: &Principal) -> Role {
        self.roles
            .iter()
            .find(|(_, names)| caller.matches_any(names))
            .map_or(Role::None, |(role, _)| *role)
    }
}

#[cfg(test)]
mod tests {
    use prism_auth::PrincipalKind;

    use super::*;

    fn caller(sub: &str, groups: &[&str]) -> Principal {
        Principal {
            subject: sub.into(),
            issuer: Some("https://id".into()),
            email: None,
            groups: groups.iter().map(|g| g.to_string()).collect(),
            scopes: vec!["orders.read".into()],
            expires_at: None,
            kind: PrincipalKind::Token,
        }
    }

    fn policy() -> Policy {
        let config = Config::from_yaml(
            r#"
auth:
  admin:
    viewer: ["group:viewers"]
    operator: ["group:ops"]
    admin: ["sub:root"]
namespaces:
  - name: orders
    pattern: keyvalue
    access:
      read: ["group:orders-readers", "scope:orders.read"]
      write: ["group:orders-writers"]
  - name: closed
    pattern: keyvalue
"#,
        )
        .unwrap();
        Policy::from_config(&config)
    }

    #[test]
    fn read_and_write_are_granted_separately() {
        let p = policy();
        let writer = caller("w", &["orders-writers"]);
        assert!(p.allows(&writer, "orders", Permission::Write));
        assert!(
            p.allows(&writer, "orders", Permission::Read),
            "its token has the orders.read scope"
        );
        let reader = Principal {
            scopes: vec![],
            ..caller("r", &["orders-readers"])
        };
        assert!(p.allows(&reader, "orders", Permission::Read));
        assert!(!p.allows(&reader, "orders", Permission::Write));
    }

    #[test]
    fn no_entry_means_nobody_and_unknown_namespaces_allow_nobody() {
        let p = policy();
        let root = caller("root", &["orders-writers", "orders-readers"]);
        assert!(!p.allows(&root, "closed", Permission::Read));
        assert!(!p.allows(&root, "nowhere", Permission::Read));
    }

    #[test]
    fn roles_take_the_highest_match() {
        let p = policy();
        assert_eq!(p.role(&caller("x", &[])), Role::None);
        assert_eq!(p.role(&caller("x", &["viewers"])), Role::Viewer);
        assert_eq!(p.role(&caller("x", &["viewers", "ops"])), Role::Operator);
        assert_eq!(p.role(&caller("root", &["viewers"])), Role::Admin);
        assert!(Role::Admin > Role::Operator && Role::Operator > Role::Viewer);
    }

    #[test]
    fn every_data_method_has_its_permission() {
        use Permission::*;
        for (path, need) in [
            ("/prism.keyvalue.v1.KeyValue/Get", Read),
            ("/prism.keyvalue.v1.KeyValue/Exists", Read),
            ("/prism.keyvalue.v1.KeyValue/Scan", Read),
            ("/prism.keyvalue.v1.KeyValue/Set", Write),
            ("/prism.keyvalue.v1.KeyValue/Delete", Write),
            ("/prism.pubsub.v1.PubSub/Subscribe", Read),
            ("/prism.pubsub.v1.PubSub/Unsubscribe", Read),
            ("/prism.pubsub.v1.PubSub/Publish", Write),
            ("/prism.pubsub.v1.PubSub/PublishBatch", Write),
            ("/prism.pubsub.v1.PubSub/Ack", Write),
            ("/prism.registry.v1.MulticastRegistry/Get", Read),
            ("/prism.registry.v1.MulticastRegistry/Enumerate", Read),
            ("/prism.registry.v1.MulticastRegistry/Receive", Read),
            ("/prism.registry.v1.MulticastRegistry/Register", Write),
            ("/prism.registry.v1.MulticastRegistry/Unregister", Write),
            ("/prism.registry.v1.MulticastRegistry/Multicast", Write),
            ("/prism.keyvalue.v1.KeyValue/Future", Write),
            ("/nonsense", Write),
        ] {
            assert_eq!(data_need(path), Need::Namespace(need), "{path}");
        }
        assert_eq!(data_need("/grpc.health.v1.Health/Check"), Need::Nothing);
        assert_eq!(
            data_need("/grpc.reflection.v1.ServerReflection/ServerReflectionInfo"),
            Need::Nothing
        );
    }

    #[test]
    fn every_admin_method_has_its_role() {
        for (method, need) in [
            ("WhoAmI", Need::Caller),
            ("ListPatterns", Need::Role(Role::Viewer)),
            ("WatchPatterns", Need::Role(Role::Viewer)),
            ("GetLatency", Need::Role(Role::Viewer)),
            ("ListEvents", Need::Role(Role::Viewer)),
            ("WatchEvents", Need::Role(Role::Viewer)),
            ("ListPatternLogs", Need::Role(Role::Viewer)),
            ("WatchPatternLogs", Need::Role(Role::Viewer)),
            ("GetExemplars", Need::Role(Role::Viewer)),
            ("RestartPattern", Need::Role(Role::Operator)),
            ("ReloadPattern", Need::Role(Role::Operator)),
            ("ReloadConfig", Need::Role(Role::Admin)),
            ("ApplyNamespace", Need::Role(Role::Admin)),
            ("DeleteNamespace", Need::Role(Role::Admin)),
            ("SomethingNew", Need::Role(Role::Admin)),
        ] {
            assert_eq!(
                admin_need(&format!("/prism.admin.v1.Admin/{method}")),
                need,
                "{method}"
            );
        }
        assert_eq!(admin_need("/grpc.health.v1.Health/Watch"), Need::Nothing);
    }
}
