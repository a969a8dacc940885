//! Admin roles: viewer < operator < admin, WhoAmI, and every admin action
//! recorded with who asked.

use std::time::Duration;

use prism_proto::admin::v1::{
    AdminRole, EventKind, ListEventsRequest, ListPatternsRequest, ReloadConfigRequest,
    RestartPatternRequest, WhoAmIRequest,
};
use prism_tests::eventually;
use serde_json::json;
use tonic::Code;

use super::{NAMESPACES, Setup};

const ROLES: &str = r#"  admin:
    viewer: ["group:viewers"]
    operator: ["group:operators"]
    admin: ["email:root@example.com"]
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roles_gate_the_admin_api_and_actions_are_audited() {
    let setup = Setup::start(ROLES, NAMESPACES).await;
    setup.proxy.wait_serving("orders").await;
    let viewer = setup.token("vera", json!({"groups": ["viewers"]}));
    let operator = setup.token("otto", json!({"groups": ["operators"]}));
    let admin = setup.token("ada", json!({"email": "root@example.com"}));
    let nobody = setup.token("nora", json!({}));

    let denied = setup
        .proxy
        .admin_as(None)
        .await
        .list_patterns(ListPatternsRequest {})
        .await
        .expect_err("no token");
    assert_eq!(denied.code(), Code::Unauthenticated, "{denied:?}");
    let denied = setup
        .proxy
        .admin_as(Some(&nobody))
        .await
        .list_patterns(ListPatternsRequest {})
        .await
        .expect_err("no role");
    assert_eq!(denied.code(), Code::PermissionDenied, "{denied:?}");
    assert_eq!(
        denied.message(),
        "ListPatterns needs the viewer role; sub:nora has no role"
    );

    let who = setup
        .proxy
        .admin_as(Some(&nobody))
        .await
        .who_am_i(WhoAmIRequest {})
        .await
        .expect("anyone authenticated may ask who they are")
        .into_inner();
    assert!(who.auth_enabled);
    assert_eq!(who.principal, "sub:nora");
    assert_eq!(who.role(), AdminRole::None);
    assert!(who.expires_at > 0);

    let mut as_viewer = setup.proxy.admin_as(Some(&viewer)).await;
    let list = as_viewer
        .list_patterns(ListPatternsRequest {})
        .await
        .expect("a viewer lists");
    assert_eq!(list.into_inner().patterns.len(), 2);
    let denied = as_viewer
        .restart_pattern(RestartPatternRequest {
            namespace: "orders".into(),
        })
        .await
        .expect_err("a viewer may not restart");
    assert_eq!(denied.code(), Code::PermissionDenied, "{denied:?}");
    assert!(
        denied.message().contains("needs the operator role"),
        "{denied:?}"
    );
    assert_eq!(
        as_viewer
            .who_am_i(WhoAmIRequest {})
            .await
            .unwrap()
            .into_inner()
            .role(),
        AdminRole::Viewer
    );

    let mut as_operator = setup.proxy.admin_as(Some(&operator)).await;
    as_operator
        .restart_pattern(RestartPatternRequest {
            namespace: "orders".into(),
        })
        .await
        .expect("an operator restarts");
    let denied = as_operator
        .reload_config(ReloadConfigRequest {})
        .await
        .expect_err("an operator may not reload the config");
    assert_eq!(denied.code(), Code::PermissionDenied, "{denied:?}");
    assert!(
        denied.message().contains("needs the admin role"),
        "{denied:?}"
    );

    let mut as_admin = setup.proxy.admin_as(Some(&admin)).await;
    assert_eq!(
        as_admin
            .who_am_i(WhoAmIRequest {})
            .await
            .unwrap()
            .into_inner()
            .role(),
        AdminRole::Admin
    );
    as_admin
        .reload_config(ReloadConfigRequest {})
        .await
        .expect("an admin reloads the config");
    let failed = as_admin
        .restart_pattern(RestartPatternRequest {
            namespace: "no-such".into(),
        })
        .await
        .expect_err("unknown namespace");
    assert_eq!(failed.code(), Code::NotFound);

    // The audit: who, what, which namespace, the result — in the event log
    // and in the proxy's log. Refused calls never reached a handler.
    let events = eventually(Duration::from_secs(10), "three admin actions", || async {
        let events = setup
            .proxy
            .admin_as(Some(&admin))
            .await
            .list_events(ListEventsRequest {
                namespace: String::new(),
                limit: 0,
                after_seq: 0,
            })
            .await
            .ok()?
            .into_inner()
            .events;
        let actions: Vec<_> = events
            .into_iter()
            .filter(|e| e.kind() == EventKind::AdminAction)
            .collect();
        (actions.len() >= 3).then_some(actions)
    })
    .await;
    assert_eq!(events.len(), 3, "{events:?}");
    assert_eq!(events[0].actor, "sub:otto");
    assert_eq!(events[0].namespace, "orders");
    assert_eq!(events[0].reason, "sub:otto restart: ok");
    assert_eq!(events[1].actor, "sub:ada");
    assert_eq!(events[1].reason, "sub:ada config reload: ok");
    assert_eq!(events[2].namespace, "no-such");
    assert!(
        events[2]
            .reason
            .starts_with("sub:ada restart: failed (NotFound)"),
        "{:?}",
        events[2]
    );
    let log = setup.proxy.log();
    assert!(
        log.lines()
            .any(|l| l.contains("admin action") && l.contains("sub:otto") && l.contains("restart")),
        "the audit is in the log too"
    );
}
