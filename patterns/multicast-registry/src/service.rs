//! `prism.registry.v1.MulticastRegistry` on the two slots. Every call is
//! admitted by the lifecycle gate, checked by the rules `prism_proto`
//! shares with the proxy, then served by the slots; every failure maps to a
//! status in `error.rs`. The fan-out is in [`fanout`], the Receive stream
//! in [`receive`].

mod fanout;
mod receive;

use std::{collections::HashMap, sync::Arc};

use prism_observability::propagation;
use prism_pattern_sdk::Gate;
use prism_proto::{
    json,
    registry::{
        EnumerateQuery, MulticastOrder, Registration, check_identity, encode_cursor,
        v1::{
            DeliveryResult, DeliveryStatus, EnumerateRequest, EnumerateResponse, GetRequest,
            GetResponse, Identity, MulticastRequest, MulticastResponse, ReceiveRequest,
            RegisterRequest, RegisterResponse, UnregisterRequest, UnregisterResponse,
            multicast_registry_server::MulticastRegistry,
        },
    },
};
use rand::Rng;
use tonic::{Request, Response, Status};
use tracing::{Instrument, Span};
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::{
    error::Error,
    pattern::{RegistryPattern, Slots, now_ms},
    slots::{Envelope, Record},
};

pub(crate) struct RegistryService {
    pattern: Arc<RegistryPattern>,
    gate: Gate,
}

impl RegistryService {
    pub(crate) fn new(pattern: Arc<RegistryPattern>, gate: Gate) -> Self {
        Self { pattern, gate }
    }

    /// The slots of a started namespace, once the gate admits the call.
    fn admit(&self) -> Result<Arc<Slots>, Error> {
        self.gate.check()?;
        self.pattern.slots()
    }
}

/// An identity as the client sees it; metadata only when asked for.
fn identity(record: Record, include_metadata: bool) -> Identity {
    Identity {
        metadata: include_metadata.then(|| json::to_struct(&record.metadata)),
        identity: record.identity,
        registered_at_ms: record.registered_at_ms,
        expires_at_ms: record.expires_at_ms.unwrap_or(0),
    }
}

/// The span of one slot call: INTERNAL for the in-process MemStore, CLIENT
/// for a call to Redis or NATS. Never carries identities or metadata.
fn slot_span(slot: &'static str, backend: &'static str, operation: &'static str) -> Span {
    let kind = if backend == "memstore" {
        "internal"
    } else {
        "client"
    };
    tracing::info_span!(
        target: "prism::registry",
        "registry.slot",
        otel.name = %format_args!("{slot} {operation}"),
        otel.kind = kind,
        prism.slot = slot,
        prism.backend = backend,
    )
}

/// One target's line of a Multicast response.
fn result(identity: String, status: fanout::Status) -> DeliveryResult {
    let (status, error) = match status {
        fanout::Status::Delivered => (DeliveryStatus::Delivered, String::new()),
        fanout::Status::Pending => (DeliveryStatus::Pending, String::new()),
        fanout::Status::Failed(why) => (DeliveryStatus::Failed, why),
        fanout::Status::Timeout(why) => (DeliveryStatus::Timeout, why),
    };
    DeliveryResult {
        identity,
        status: status.into(),
        error,
    }
}

fn new_multicast_id() -> String {
    format!("{:032x}", rand::rng().random::<u128>())
}

fn count(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

#[tonic::async_trait]
impl MulticastRegistry for RegistryService {
    async fn register(
        &self,
        request: Request<RegisterRequest>,
    ) -> Result<Response<RegisterResponse>, Status> {
        let slots = self.admit()?;
        let registration = Registration::from_request(request.get_ref()).map_err(Error::from)?;
        let registered = slots
            .registry
            .register(&registration, now_ms())
            .instrument(slot_span("registry", slots.registry.backend(), "register"))
            .await?;
        Ok(Response::new(RegisterResponse {
            registered_at_ms: registered.registered_at_ms,
            expires_at_ms: registered.expires_at_ms.unwrap_or(0),
            created: registered.created,
        }))
    }

    async fn unregister(
        &self,
        request: Request<UnregisterRequest>,
    ) -> Result<Response<UnregisterResponse>, Status> {
        let slots = self.admit()?;
        let identity = &request.get_ref().identity;
        check_identity(identity).map_err(Error::from)?;
        let existed = slots
            .registry
            .unregister(identity, now_ms())
            .instrument(slot_span(
                "registry",
                slots.registry.backend(),
                "unregister",
            ))
            .await?;
        // Also when it had expired unswept: its pending messages go with it.
        slots
            .messaging
            .forget(identity)
            .instrument(slot_span("messaging", slots.messaging.backend(), "forget"))
            .await?;
        Ok(Response::new(UnregisterResponse { existed }))
    }

    async fn get(&self, request: Request<GetRequest>) -> Result<Response<GetResponse>, Status> {
        let slots = self.admit()?;
        let name = &request.get_ref().identity;
        check_identity(name).map_err(Error::from)?;
        let record = slots
            .registry
            .get(name, now_ms())
            .instrument(slot_span("registry", slots.registry.backend(), "get"))
            .await?
            .ok_or_else(|| Error::NotRegistered(name.clone()))?;
        Ok(Response::new(GetResponse {
            identity: Some(identity(record, true)),
        }))
    }

    async fn enumerate(
        &self,
        request: Request<EnumerateRequest>,
    ) -> Result<Response<EnumerateResponse>, Status> {
        let slots = self.admit()?;
        let query = EnumerateQuery::from_request(request.get_ref()).map_err(Error::from)?;
        let page = slots
            .registry
            .select(&query.filter, query.after.as_deref(), query.limit, now_ms())
            .instrument(slot_span("registry", slots.registry.backend(), "select"))
            .await?;
        let next_cursor = match page.records.last() {
            Some(last) if page.more => encode_cursor(&last.identity),
            _ => String::new(),
        };
        Ok(Response::new(EnumerateResponse {
            identities: page
                .records
                .into_iter()
                .map(|r| identity(r, query.include_metadata))
                .collect(),
            next_cursor,
            total_count: page.total,
        }))
    }

    async fn multicast(
        &self,
        request: Request<MulticastRequest>,
    ) -> Result<Response<MulticastResponse>, Status> {
        let slots = self.admit()?;
        let req = request.into_inner();
        let order = MulticastOrder::from_request(&req, slots.config.max_value_bytes)
            .map_err(Error::from)?;
        let sent_at_ms = now_ms();
        let targets = slots
            .registry
            .select(&order.filter, None, usize::MAX, sent_at_ms)
            .instrument(slot_span("registry", slots.registry.backend(), "select"))
            .await?
            .records;
        let span = Span::current();
        span.set_attribute("prism.multicast.target_count", targets.len() as i64);
        let multicast_id = new_multicast_id();
        let payload: Arc<[u8]> = req.payload.into();
        let metadata: Arc<HashMap<String, String>> = Arc::new(req.metadata.into_iter().collect());
        let traceparent = propagation::traceparent_of(&span).unwrap_or_default();
        let messaging = &slots.messaging;
        let report = fanout::fan_out(
            targets.len(),
            slots.config.fanout_concurrency,
            order.timeout,
            |index| {
                let envelope = Envelope {
                    message_id: fanout::message_id(&multicast_id, index),
                    multicast_id: multicast_id.clone(),
                    payload: payload.clone(),
                    metadata: metadata.clone(),
                    sent_at_ms,
                    traceparent: traceparent.clone(),
                };
                let identity = targets[index].identity.as_str();
                async move { messaging.deliver(identity, &envelope).await }
            },
        )
        .await;

        for (key, value) in [
            ("prism.multicast.delivered_count", report.delivered),
            ("prism.multicast.pending_count", report.pending),
            ("prism.multicast.failed_count", report.failed),
        ] {
            span.set_attribute(key, i64::from(value));
        }
        self.pattern.counters().count_multicast(
            report.delivered.into(),
            report.pending.into(),
            report.failed.into(),
        );
        let results: Vec<DeliveryResult> = targets
            .into_iter()
            .zip(report.results)
            .map(|(target, status)| result(target.identity, status))
            .collect();
        Ok(Response::new(MulticastResponse {
            multicast_id,
            target_count: count(results.len()),
            delivered_count: report.delivered,
            pending_count: report.pending,
            failed_count: report.failed,
            results,
        }))
    }

    type ReceiveStream = receive::InboxMessages;

    async fn receive(
        &self,
        request: Request<ReceiveRequest>,
    ) -> Result<Response<Self::ReceiveStream>, Status> {
        let slots = self.admit()?;
        let name = &request.get_ref().identity;
        check_identity(name).map_err(Error::from)?;
        if slots
            .registry
            .get(name, now_ms())
            .instrument(slot_span("registry", slots.registry.backend(), "get"))
            .await?
            .is_none()
        {
            return Err(Error::NotRegistered(name.clone()).into());
        }
        let inbox = slots
            .messaging
            .attach(name)
            .instrument(slot_span("messaging", slots.messaging.backend(), "attach"))
            .await?;
        Ok(Response::new(receive::InboxMessages::new(
            inbox,
            slots.messaging.backend(),
        )))
    }
}
