//! Tools for attacking a proxy the way a hostile client would: hand-written
//! HTTP/2 frames over a plain TCP socket (to break the rules a real client
//! library keeps, such as the peer's stream limit), and the proxy's
//! resident memory and CPU time from `/proc`.

use std::{io, time::Duration};

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

pub const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
pub const DATA: u8 = 0x0;
pub const HEADERS: u8 = 0x1;
pub const RST_STREAM: u8 = 0x3;
pub const SETTINGS: u8 = 0x4;
pub const GOAWAY: u8 = 0x7;
pub const END_HEADERS: u8 = 0x4;
pub const ACK: u8 = 0x1;
pub const REFUSED_STREAM: u32 = 0x7;

/// One HTTP/2 frame.
#[derive(Debug, Clone)]
pub struct Frame {
    pub kind: u8,
    pub flags: u8,
    pub stream: u32,
    pub payload: Vec<u8>,
}

impl Frame {
    pub fn encode(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
        let mut out = (payload.len() as u32).to_be_bytes()[1..].to_vec();
        out.extend_from_slice(&[kind, flags]);
        out.extend_from_slice(&stream.to_be_bytes());
        out.extend_from_slice(payload);
        out
    }

    /// The error code of a RST_STREAM or GOAWAY frame.
    pub fn error_code(&self) -> Option<u32> {
        let at = match self.kind {
            RST_STREAM => 0,
            GOAWAY => 4,
            _ => return None,
        };
        let b = self.payload.get(at..at + 4)?;
        Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
}

fn hpack_string(out: &mut Vec<u8>, s: &str) {
    assert!(s.len() < 127, "short strings only");
    out.push(s.len() as u8);
    out.extend_from_slice(s.as_bytes());
}

/// An HPACK block (no Huffman, no indexing) for a gRPC request to `path` on
/// `namespace`.
pub fn grpc_request_headers(path: &str, namespace: &str) -> Vec<u8> {
    // :method POST and :scheme http from the static table.
    let mut out = vec![0x83, 0x86];
    // :path and :authority: literal values for static-table names.
    out.push(0x04);
    hpack_string(&mut out, path);
    out.push(0x01);
    hpack_string(&mut out, "localhost");
    // content-type is static entry 31: a 4-bit prefix of 15, then 16.
    out.extend_from_slice(&[0x0f, 0x10]);
    hpack_string(&mut out, "application/grpc");
    for (name, value) in [("te", "trailers"), ("x-prism-namespace", namespace)] {
        out.push(0x00);
        hpack_string(&mut out, name);
        hpack_string(&mut out, value);
    }
    out
}

/// A client-side HTTP/2 connection driven frame by frame.
pub struct RawH2 {
    pub stream: TcpStream,
}

impl RawH2 {
    /// Connects, sends the preface and empty SETTINGS, and acknowledges the
    /// server's SETTINGS (which puts the server's limits in force).
    pub async fn connect(addr: std::net::SocketAddr) -> io::Result<Self> {
        let mut raw = Self {
            stream: TcpStream::connect(addr).await?,
        };
        let mut hello = PREFACE.to_vec();
        hello.extend(Frame::encode(SETTINGS, 0, 0, &[]));
        raw.stream.write_all(&hello).await?;
        loop {
            let frame = raw.read_frame().await?;
            if frame.kind == SETTINGS && frame.flags & ACK == 0 {
                raw.stream
                    .write_all(&Frame::encode(SETTINGS, ACK, 0, &[]))
                    .await?;
                return Ok(raw);
            }
        }
    }

    pub async fn send(
        &mut self,
        kind: u8,
        flags: u8,
        stream: u32,
        payload: &[u8],
    ) -> io::Result<()> {
        self.stream
            .write_all(&Frame::encode(kind, flags, stream, payload))
            .await
    }

    pub async fn read_frame(&mut self) -> io::Result<Frame> {
        let mut head = [0u8; 9];
        self.stream.read_exact(&mut head).await?;
        let len = u32::from_be_bytes([0, head[0], head[1], head[2]]) as usize;
        let mut payload = vec![0; len];
        self.stream.read_exact(&mut payload).await?;
        Ok(Frame {
            kind: head[3],
            flags: head[4],
            stream: u32::from_be_bytes([head[5], head[6], head[7], head[8]]) & 0x7fff_ffff,
            payload,
        })
    }

    /// Frames received until `quiet` passes with none, or the connection ends.
    pub async fn frames_until_quiet(&mut self, quiet: Duration) -> Vec<Frame> {
        let mut frames = Vec::new();
        while let Ok(Ok(frame)) = tokio::time::timeout(quiet, self.read_frame()).await {
            frames.push(frame);
        }
        frames
    }
}

/// Resident memory of `pid` in KiB (`VmRSS`).
pub fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("read status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS line")
}

/// CPU time `pid` has used (user + system), in clock ticks.
pub fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("read stat");
    let (_, rest) = stat.rsplit_once(')').expect("stat format");
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15; `rest` starts at field 3.
    fields[11].parse::<u64>().expect("utime") + fields[12].parse::<u64>().expect("stime")
}

/// Clock ticks per second, for [`cpu_ticks`].
pub fn ticks_per_second() -> u64 {
    let out = std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .expect("run getconf");
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or(100)
}

/// Open file descriptors of `pid`.
pub fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0)
}
