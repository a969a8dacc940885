//! One `prismctl` command: connect with the console's client settings and
//! token, make the call, print the reply (a table, or protobuf JSON).

use std::{io::Write, time::Duration};

use prism_proto::{
    admin::v1::{
        ApplyNamespaceRequest, DeleteNamespaceRequest, GetExemplarsRequest, GetLatencyRequest,
        ListEventsRequest, ListPatternLogsRequest, ListPatternsRequest, ReloadConfigRequest,
        ReloadPatternRequest, RestartPatternRequest, WatchEventsRequest, WatchPatternLogsRequest,
        WhoAmIRequest, admin_client::AdminClient,
    },
    proto_json::{ProtoName, to_json},
};
use tonic::{Code, Request};

use super::{
    args::{ConfigCommand, CtlArgs, CtlCommand, NamespaceCommand},
    human,
};
use crate::{Error, auth::Bearer, client};

pub(crate) async fn run(args: &CtlArgs, out: &mut impl Write) -> Result<(), Error> {
    let (config, tokens) = args.connection.client()?;
    let bearer = Bearer::default();
    if let Some(tokens) = tokens {
        bearer.set(&tokens.token().await.map_err(Error::Token)?);
    }
    let channel = client::connect(&config)
        .await
        .map_err(|reason| Error::Unreachable {
            uri: config.uri.clone(),
            reason,
        })?;
    let mut admin = AdminClient::with_interceptor(channel, bearer);
    let timeout = Duration::from_secs(args.timeout);
    let json = args.json;
    match &args.command {
        CtlCommand::Status => {
            let reply = admin
                .list_patterns(timed(timeout, ListPatternsRequest {}))
                .await
                .map_err(|s| Error::call("ListPatterns", &s))?;
            print(out, json, &reply.into_inner(), human::status)
        }
        CtlCommand::Events {
            follow,
            namespace,
            limit,
        } => {
            let namespace = namespace.clone().unwrap_or_default();
            // The watch starts before the list, so nothing falls in between.
            let mut stream = if *follow {
                let watch = WatchEventsRequest {
                    namespace: namespace.clone(),
                    after_seq: 0,
                };
                let stream = admin
                    .watch_events(watch)
                    .await
                    .map_err(|s| Error::call("WatchEvents", &s))?;
                Some(stream.into_inner())
            } else {
                None
            };
            let list = admin
                .list_events(timed(
                    timeout,
                    ListEventsRequest {
                        namespace,
                        limit: *limit,
                        after_seq: 0,
                    },
                ))
                .await
                .map_err(|s| Error::call("ListEvents", &s))?
                .into_inner();
            let Some(stream) = &mut stream else {
                return print(out, json, &list, |l| {
                    l.events.iter().map(|e| human::event(e) + "\n").collect()
                });
            };
            for event in &list.events {
                line(out, json, event, human::event)?;
            }
            let listed = list.events.iter().map(|e| e.seq).max().unwrap_or(0);
            loop {
                match stream.message().await {
                    // Already printed from the list (seqs only grow).
                    Ok(Some(event)) if event.seq <= listed => {}
                    Ok(Some(event)) => line(out, json, &event, human::event)?,
                    Ok(None) => {
                        return Err(Error::Call {
                            call: "WatchEvents",
                            code: Code::Unavailable,
                            message: "the proxy ended the event stream".into(),
                        });
                    }
                    Err(status) => return Err(Error::call("WatchEvents", &status)),
                }
            }
        }
        CtlCommand::Latency {
            namespace,
            operation,
        } => {
            let request = GetLatencyRequest {
                namespace: namespace.clone(),
                operation: operation.clone().unwrap_or_default(),
            };
            let reply = admin
                .get_latency(timed(timeout, request))
                .await
                .map_err(|s| Error::call("GetLatency", &s))?;
            print(out, json, &reply.into_inner(), human::latency)
        }
        CtlCommand::Logs {
            namespace,
            follow: false,
            tail,
        } => {
            let request = ListPatternLogsRequest {
                namespace: namespace.clone(),
                limit: *tail,
                since_seq: 0,
            };
            let reply = admin
                .list_pattern_logs(timed(timeout, request))
                .await
                .map_err(|s| Error::call("ListPatternLogs", &s))?;
            print(out, json, &reply.into_inner(), |r| {
                r.lines.iter().map(|l| human::log_line(l) + "\n").collect()
            })
        }
        CtlCommand::Logs {
            namespace,
            follow: true,
            tail,
        } => {
            let request = WatchPatternLogsRequest {
                namespace: namespace.clone(),
                since_seq: 0,
                tail: *tail,
            };
            let mut stream = admin
                .watch_pattern_logs(request)
                .await
                .map_err(|s| Error::call("WatchPatternLogs", &s))?
                .into_inner();
            loop {
                match stream.message().await {
                    Ok(Some(log)) => line(out, json, &log, human::log_line)?,
                    Ok(None) => {
                        return Err(Error::Call {
                            call: "WatchPatternLogs",
                            code: Code::Unavailable,
                            message: "the proxy ended the log stream".into(),
                        });
                    }
                    Err(status) => return Err(Error::call("WatchPatternLogs", &status)),
                }
            }
        }
        CtlCommand::Traces {
            namespace,
            operation,
        } => {
            let request = GetExemplarsRequest {
                namespace: namespace.clone(),
                operation: operation.clone().unwrap_or_default(),
            };
            let reply = admin
                .get_exemplars(timed(timeout, request))
                .await
                .map_err(|s| Error::call("GetExemplars", &s))?;
            print(out, json, &reply.into_inner(), human::exemplars)
        }
        CtlCommand::Restart { namespace } => {
            let request = RestartPatternRequest {
                namespace: namespace.clone(),
            };
            let reply = admin
                .restart_pattern(timed(timeout, request))
                .await
                .map_err(|s| Error::call("RestartPattern", &s))?;
            print(out, json, &reply.into_inner(), |r| r.message.clone() + "\n")
        }
        CtlCommand::Reload { namespace } => {
            let request = ReloadPatternRequest {
                namespace: namespace.clone(),
            };
            let reply = admin
                .reload_pattern(timed(timeout, request))
                .await
                .map_err(|s| Error::call("ReloadPattern", &s))?;
            print(out, json, &reply.into_inner(), |r| r.message.clone() + "\n")
        }
        CtlCommand::Config(ConfigCommand::Reload) => {
            let reply = admin
                .reload_config(timed(timeout, ReloadConfigRequest {}))
                .await
                .map_err(|s| Error::call("ReloadConfig", &s))?;
            print(out, json, &reply.into_inner(), |r| r.message.clone() + "\n")
        }
        CtlCommand::Namespace(NamespaceCommand::Apply { file }) => {
            let yaml = read_input(file)?;
            let reply = admin
                .apply_namespace(timed(timeout, ApplyNamespaceRequest { yaml }))
                .await
                .map_err(|s| Error::call("ApplyNamespace", &s))?;
            print(out, json, &reply.into_inner(), |r| r.message.clone() + "\n")
        }
        CtlCommand::Namespace(NamespaceCommand::Delete { name }) => {
            let request = DeleteNamespaceRequest { name: name.clone() };
            let reply = admin
                .delete_namespace(timed(timeout, request))
                .await
                .map_err(|s| Error::call("DeleteNamespace", &s))?;
            print(out, json, &reply.into_inner(), |r| r.message.clone() + "\n")
        }
        CtlCommand::Whoami => {
            let reply = admin
                .who_am_i(timed(timeout, WhoAmIRequest {}))
                .await
                .map_err(|s| Error::call("WhoAmI", &s))?;
            print(out, json, &reply.into_inner(), human::whoami)
        }
    }
}

fn timed<T>(timeout: Duration, message: T) -> Request<T> {
    let mut request = Request::new(message);
    request.set_timeout(timeout);
    request
}

/// The reply as protobuf JSON (pretty), or as `human` renders it.
fn print<M: ProtoName>(
    out: &mut impl Write,
    json: bool,
    reply: &M,
    human: impl Fn(&M) -> String,
) -> Result<(), Error> {
    let text = if json {
        let value = to_json(reply).map_err(|e| Error::Output(e.into()))?;
        serde_json::to_string_pretty(&value).map_err(|e| Error::Output(e.into()))? + "\n"
    } else {
        human(reply)
    };
    out.write_all(text.as_bytes()).map_err(Error::Output)?;
    out.flush().map_err(Error::Output)
}

/// One followed event or log line: a line of text, or one compact JSON
/// object.
fn line<M: ProtoName>(
    out: &mut impl Write,
    json: bool,
    message: &M,
    human: impl Fn(&M) -> String,
) -> Result<(), Error> {
    let text = if json {
        let value = to_json(message).map_err(|e| Error::Output(e.into()))?;
        value.to_string()
    } else {
        human(message)
    };
    writeln!(out, "{text}").map_err(Error::Output)?;
    out.flush().map_err(Error::Output)
}

/// A file's text, or standard input's for `-`.
fn read_input(path: &std::path::Path) -> Result<String, Error> {
    let failed = |source| Error::Input {
        path: path.display().to_string(),
        source,
    };
    if path.as_os_str() == "-" {
        std::io::read_to_string(std::io::stdin()).map_err(failed)
    } else {
        std::fs::read_to_string(path).map_err(failed)
    }
}
