//! `prism-net`: transport pieces the proxy and the patterns share. [`cork`]
//! batches what one turn of an HTTP/2 connection writes into one `writev`.

pub mod cork;

pub use cork::Corked;
