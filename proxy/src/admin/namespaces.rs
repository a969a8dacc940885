//! ApplyNamespace and DeleteNamespace: namespaces created, changed and
//! removed through the admin API by editing the proxy's config file (see
//! [`crate::state::ProxyState::edit_config_file`]), applied as ReloadConfig
//! applies it, and audited with the caller's name.

use prism_proto::admin::v1::{ApplyNamespaceRequest, DeleteNamespaceRequest, ReloadConfigResponse};
use tonic::{Request, Response, Status};

use super::{AdminService, actor_of};
use crate::{config::edit, state::ConfigChanges};

impl AdminService {
    pub(super) async fn apply_namespace_call(
        &self,
        request: Request<ApplyNamespaceRequest>,
    ) -> Result<Response<ReloadConfigResponse>, Status> {
        let actor = actor_of(&request);
        let yaml = request.into_inner().yaml;
        let result = self
            .state
            .edit_config_file(|text| {
                let (new_text, name, created) = edit::apply(text, &yaml)?;
                Ok((new_text, (name, created)))
            })
            .await;
        // The name is known only once the YAML reads; a refused one is
        // audited under the name it gives, if any.
        let name = match &result {
            Ok((_, (name, _))) => name.clone(),
            Err(_) => name_in(&yaml),
        };
        let result = result
            .map(|(changes, (name, created))| {
                let verb = if created { "created" } else { "applied" };
                Response::new(reply(changes, format!("namespace `{name}` {verb}")))
            })
            .map_err(Status::from);
        self.audit(&actor, "namespace apply", &name, &result);
        result
    }

    pub(super) async fn delete_namespace_call(
        &self,
        request: Request<DeleteNamespaceRequest>,
    ) -> Result<Response<ReloadConfigResponse>, Status> {
        let actor = actor_of(&request);
        let name = request.into_inner().name;
        let result = self
            .state
            .edit_config_file(|text| Ok((edit::delete(text, &name)?, ())))
            .await
            .map(|(changes, ())| {
                Response::new(reply(changes, format!("namespace `{name}` deleted")))
            })
            .map_err(Status::from);
        self.audit(&actor, "namespace delete", &name, &result);
        result
    }
}

/// The `name:` of a namespace's YAML, best effort, for the audit of a
/// refused apply.
fn name_in(yaml: &str) -> String {
    #[derive(serde::Deserialize)]
    struct Named {
        name: String,
    }
    serde_saphyr::from_str::<Named>(yaml)
        .map(|n| n.name)
        .unwrap_or_default()
        .chars()
        .take(63)
        .collect()
}

fn reply(changes: ConfigChanges, what: String) -> ReloadConfigResponse {
    let mut message = format!(
        "{what}: {} added, {} removed, {} changed",
        changes.added.len(),
        changes.removed.len(),
        changes.changed.len()
    );
    if !changes.failed.is_empty() {
        message.push_str(&format!(
            "; hot reload failed for {} (old process kept)",
            changes.failed.join(", ")
        ));
    }
    ReloadConfigResponse {
        added: changes.added,
        removed: changes.removed,
        changed: changes.changed,
        message,
    }
}
