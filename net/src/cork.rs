//! Write coalescing for HTTP/2 connections: the frames one turn of a
//! connection produces leave in one write instead of one per flush.
//!
//! h2 flushes its frame buffer whenever it holds a DATA frame of 256 bytes
//! or more, so a gRPC response (HEADERS, DATA, trailers) leaves as two
//! writes; a client's request leaves as HEADERS first and DATA once its
//! body task has run. Each write wakes the peer, which on a small machine
//! preempts the writer before its second write: two wake-ups where one
//! would do, and under load one `writev` per message of a stream.
//!
//! [`Corked`] keeps what is written until the connection flushes, and puts
//! the first flush of a batch off by one turn of the scheduler (the task
//! wakes itself and yields), so the frames that the tasks running meanwhile
//! queue on the connection join the same write. The next flush writes
//! everything. Nothing waits on a timer, and a batch never holds more than
//! [`CORK_BYTES`]: past that it is written at once, and a larger write goes
//! straight through.

use std::{
    io::{self, IoSlice},
    pin::Pin,
    task::{Context, Poll, ready},
};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// The most a batch holds before it is written without waiting for a flush.
pub const CORK_BYTES: usize = 64 * 1024;

/// An I/O stream whose writes are batched per flush (see the module docs).
/// Reads pass straight through.
#[derive(Debug)]
pub struct Corked<IO> {
    inner: IO,
    held: Vec<u8>,
    /// How much of `held` has reached `inner` (a write may take part).
    sent: usize,
    /// The batch's first flush was put off; the next one writes it.
    deferred: bool,
}

impl<IO> Corked<IO> {
    pub fn new(inner: IO) -> Self {
        Self {
            inner,
            held: Vec::new(),
            sent: 0,
            deferred: false,
        }
    }

    #[cfg(test)]
    fn get_ref(&self) -> &IO {
        &self.inner
    }
}

impl<IO: AsyncWrite + Unpin> Corked<IO> {
    /// Writes out everything held.
    fn poll_release(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.sent < self.held.len() {
            let n = ready!(Pin::new(&mut self.inner).poll_write(cx, &self.held[self.sent..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.sent += n;
        }
        self.held.clear();
        self.sent = 0;
        self.deferred = false;
        Poll::Ready(Ok(()))
    }
}

impl<IO: AsyncRead + Unpin> AsyncRead for Corked<IO> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for Corked<IO> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.poll_write_vectored(cx, &[IoSlice::new(buf)])
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let me = &mut *self;
        let len: usize = bufs.iter().map(|b| b.len()).sum();
        if me.held.len() + len > CORK_BYTES {
            ready!(me.poll_release(cx))?;
            if len > CORK_BYTES {
                return Pin::new(&mut me.inner).poll_write_vectored(cx, bufs);
            }
        }
        for buf in bufs {
            me.held.extend_from_slice(buf);
        }
        Poll::Ready(Ok(len))
    }

    /// Taking slices costs one copy into the batch, which is what lets them
    /// leave together.
    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let me = &mut *self;
        if !me.held.is_empty() {
            if !me.deferred {
                // Let the tasks that are ready run first: what they queue on
                // this connection joins the batch at the next flush.
                me.deferred = true;
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
            ready!(me.poll_release(cx))?;
        }
        Pin::new(&mut me.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_release(cx))?;
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// A corked connection tells a tonic server what the connection under it
/// does (the peer's address on TCP).
impl<IO: tonic::transport::server::Connected> tonic::transport::server::Connected for Corked<IO> {
    type ConnectInfo = IO::ConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.inner.connect_info()
    }
}

#[cfg(test)]
mod tests {
    use std::{
        sync::{
            Arc,
            atomic::{AtomicUsize, Ordering},
        },
        task::Wake,
    };

    use proptest::prelude::*;

    use super::*;

    /// Records every write it is given, taking at most `chunk` bytes of
    /// each (a socket whose buffer takes part of a write).
    #[derive(Default)]
    struct Recorder {
        writes: Vec<Vec<u8>>,
        chunk: Option<usize>,
        flushes: usize,
        shut: bool,
    }

    impl AsyncWrite for Recorder {
        fn poll_write(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<io::Result<usize>> {
            let n = self.chunk.map_or(buf.len(), |c| c.min(buf.len()));
            self.writes.push(buf[..n].to_vec());
            Poll::Ready(Ok(n))
        }

        fn poll_flush(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            self.flushes += 1;
            Poll::Ready(Ok(()))
        }

        fn poll_shutdown(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            self.shut = true;
            Poll::Ready(Ok(()))
        }
    }

    #[derive(Default)]
    struct Wakes(AtomicUsize);

    impl Wake for Wakes {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    /// Polls `f` once with a waker that counts its wake-ups.
    fn poll_once<T>(wakes: &Arc<Wakes>, f: impl FnOnce(&mut Context<'_>) -> Poll<T>) -> Poll<T> {
        let waker = Arc::clone(wakes).into();
        f(&mut Context::from_waker(&waker))
    }

    fn write(corked: &mut Corked<Recorder>, bytes: &[u8]) {
        let wakes = Arc::new(Wakes::default());
        let written = poll_once(&wakes, |cx| Pin::new(&mut *corked).poll_write(cx, bytes));
        assert!(matches!(written, Poll::Ready(Ok(n)) if n == bytes.len()));
    }

    #[test]
    fn a_batch_leaves_in_one_write_at_the_second_flush() {
        let mut corked = Corked::new(Recorder::default());
        write(&mut corked, b"headers");
        write(&mut corked, b"data");
        let wakes = Arc::new(Wakes::default());
        let first = poll_once(&wakes, |cx| Pin::new(&mut corked).poll_flush(cx));
        assert!(first.is_pending(), "the first flush yields once");
        assert_eq!(wakes.0.load(Ordering::SeqCst), 1, "and wakes its task");
        assert!(corked.get_ref().writes.is_empty(), "nothing written yet");

        write(&mut corked, b"trailers");
        let second = poll_once(&wakes, |cx| Pin::new(&mut corked).poll_flush(cx));
        assert!(matches!(second, Poll::Ready(Ok(()))));
        assert_eq!(
            corked.get_ref().writes,
            vec![b"headersdatatrailers".to_vec()]
        );
        assert_eq!(corked.get_ref().flushes, 1);

        // The next batch is put off again.
        write(&mut corked, b"more");
        let third = poll_once(&wakes, |cx| Pin::new(&mut corked).poll_flush(cx));
        assert!(third.is_pending());
    }

    #[test]
    fn a_flush_with_nothing_held_goes_straight_through() {
        let mut corked = Corked::new(Recorder::default());
        let wakes = Arc::new(Wakes::default());
        let flushed = poll_once(&wakes, |cx| Pin::new(&mut corked).poll_flush(cx));
        assert!(matches!(flushed, Poll::Ready(Ok(()))));
        assert_eq!(wakes.0.load(Ordering::SeqCst), 0);
        assert_eq!(corked.get_ref().flushes, 1);
    }

    #[test]
    fn shutdown_writes_out_what_is_held() {
        let mut corked = Corked::new(Recorder::default());
        write(&mut corked, b"goaway");
        let wakes = Arc::new(Wakes::default());
        let shut = poll_once(&wakes, |cx| Pin::new(&mut corked).poll_shutdown(cx));
        assert!(matches!(shut, Poll::Ready(Ok(()))));
        assert_eq!(corked.get_ref().writes, vec![b"goaway".to_vec()]);
        assert!(corked.get_ref().shut);
    }

    #[test]
    fn past_the_cap_the_batch_is_written_and_a_large_write_goes_through() {
        let mut corked = Corked::new(Recorder::default());
        write(&mut corked, b"small");
        let large = vec![7u8; CORK_BYTES + 1];
        write(&mut corked, &large);
        let writes = &corked.get_ref().writes;
        assert_eq!(writes.len(), 2);
        assert_eq!(writes[0], b"small");
        assert_eq!(writes[1], large);
        assert!(corked.held.is_empty());
    }

    #[test]
    fn a_full_batch_is_written_before_it_grows_past_the_cap() {
        let mut corked = Corked::new(Recorder::default());
        let half = vec![1u8; CORK_BYTES / 2 + 1];
        write(&mut corked, &half);
        write(&mut corked, &half);
        assert_eq!(corked.get_ref().writes, vec![half.clone()]);
        assert_eq!(corked.held, half);
    }

    /// Drives `f` to completion on the current thread, as a runtime would:
    /// polled again after each wake.
    fn block_on<T>(mut f: impl FnMut(&mut Context<'_>) -> Poll<T>) -> T {
        let wakes = Arc::new(Wakes::default());
        for _ in 0..1_000 {
            if let Poll::Ready(v) = poll_once(&wakes, &mut f) {
                return v;
            }
        }
        panic!("never finished");
    }

    #[derive(Debug, Clone)]
    enum Op {
        Write(Vec<u8>),
        Flush,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            3 => prop_oneof![
                proptest::collection::vec(any::<u8>(), 0..300),
                proptest::collection::vec(any::<u8>(), CORK_BYTES - 10..CORK_BYTES + 10),
            ]
            .prop_map(Op::Write),
            1 => Just(Op::Flush),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Whatever the mix of writes and flushes, and however little the
        /// socket takes per write, every byte arrives once, in order, by the
        /// end of the flush that follows it.
        #[test]
        fn every_byte_arrives_in_order(
            ops in proptest::collection::vec(op(), 1..20),
            chunk in prop_oneof![Just(None), (1usize..4096).prop_map(Some)],
        ) {
            let mut corked = Corked::new(Recorder { chunk, ..Recorder::default() });
            let mut expected = Vec::new();
            for op in ops {
                match op {
                    Op::Write(bytes) => {
                        let mut rest = &bytes[..];
                        while !rest.is_empty() {
                            let n = block_on(|cx| Pin::new(&mut corked).poll_write(cx, rest))
                                .expect("the recorder never fails");
                            rest = &rest[n..];
                        }
                        expected.extend_from_slice(&bytes);
                    }
                    Op::Flush => {
                        block_on(|cx| Pin::new(&mut corked).poll_flush(cx))
                            .expect("the recorder never fails");
                        prop_assert_eq!(corked.get_ref().writes.concat(), expected.clone());
                    }
                }
            }
            block_on(|cx| Pin::new(&mut corked).poll_flush(cx)).expect("the recorder never fails");
            prop_assert_eq!(corked.get_ref().writes.concat(), expected);
        }
    }
}
