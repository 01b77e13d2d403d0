//! A reader between the report and the XML parser that keeps every node's size bounded.
//!
//! An XML parser hands over a node whole, so one 500 MB `<system-out>` would be 500 MB of
//! memory, and a report's size would decide the parser's. This reader watches how much of the
//! input the parser has taken since the node in hand began (the parser marks each node's start,
//! [`NodeGuard::node_starts`]). Under `max` bytes it only counts — a report of ordinary nodes
//! pays nothing else. A node that reaches `max` is cut: the rest of a text, CDATA section or
//! comment is skipped unread (at a character boundary) and its terminator put back
//! (or what of it was skipped), so what the parser sees stays well-formed; a tag, a DOCTYPE or a
//! processing instruction that long is refused instead, as there is no well-formed way to cut
//! one. What kind of node is in hand is read from its first bytes, kept as it starts.
//!
//! It never allocates: what it passes is a slice of the inner reader's buffer (or a static
//! terminator it re-inserts).

use std::io::{self, BufRead, Read};

use memchr::{memchr, memchr2};

/// What a node that grew past the limit is, from its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cut {
    /// Character data: skip to the next `<`.
    Text,
    /// Skip to `]]>`, and put it back.
    CData,
    /// Skip to `-->`, and put it back.
    Comment,
}

/// A [`BufRead`] that passes an XML document with every text, CDATA and comment node cut to
/// about `max` bytes, and refuses longer tags.
pub(crate) struct NodeGuard<R> {
    inner: R,
    max: u64,
    /// Where the node in hand began (bytes of input), and its first bytes.
    node_start: u64,
    prefix: [u8; 9],
    prefix_len: usize,
    /// The last two bytes passed, once the node nears `max`: a terminator may begin in them,
    /// and a comment cut after a `-` needs a space before its `-->`.
    last: [u8; 2],
    /// Set once the node in hand reached `max`: what it is being cut as.
    cutting: Option<Cut>,
    /// Past the bytes of a character the cut began inside, now skipping.
    skipping: bool,
    /// Bytes dropped since skipping began (the terminator's first bytes may have passed).
    dropped: u64,
    /// The last two bytes skipped (a terminator's).
    tail: [u8; 2],
    /// A terminator to hand over before the inner reader's next bytes.
    inject: &'static [u8],
    /// Bytes read from the inner reader, and how many of them were skipped.
    pub(crate) consumed: u64,
    pub(crate) skipped: u64,
}

impl<R: BufRead> NodeGuard<R> {
    pub(crate) fn new(inner: R, max: usize) -> Self {
        Self {
            inner,
            max: max.max(16) as u64,
            node_start: 0,
            prefix: [0; 9],
            prefix_len: 0,
            last: [0, 0],
            cutting: None,
            skipping: false,
            dropped: 0,
            tail: [0, 0],
            inject: b"",
            consumed: 0,
            skipped: 0,
        }
    }

    /// The parser is about to read a node: it begins at the next byte.
    pub(crate) fn node_starts(&mut self) {
        self.node_start = self.consumed;
        self.prefix_len = 0;
    }

    /// What the node in hand is, to be cut; an error for a node that cannot be.
    fn kind(&self) -> io::Result<Cut> {
        let p = &self.prefix[..self.prefix_len];
        let refuse = |what: &str| {
            Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{what} of over {} bytes", self.max),
            ))
        };
        if p.first() != Some(&b'<') {
            Ok(Cut::Text)
        } else if p.starts_with(b"<![CDATA[") {
            Ok(Cut::CData)
        } else if p.starts_with(b"<!--") {
            Ok(Cut::Comment)
        } else if p.starts_with(b"<?") {
            refuse("a processing instruction")
        } else if p.starts_with(b"<!") {
            refuse("a DOCTYPE")
        } else {
            refuse("a tag")
        }
    }
}

/// What to do with the inner reader's buffer while a node is being cut.
enum Step {
    /// Hand over this many bytes (0: the input ended).
    Pass(usize),
    /// Drop this many bytes; then put `terminator` back, when the node ended in them; `ended`
    /// when the cut is over.
    Drop {
        bytes: usize,
        terminator: &'static [u8],
        ended: bool,
    },
}

/// While cutting, before skipping: how many bytes of `buf` still pass — the rest of a
/// character the cut began in, so what passed is whole UTF-8.
fn still_passing(buf: &[u8]) -> usize {
    buf.iter().take_while(|b| *b & 0xC0 == 0x80).count()
}

/// While skipping: how much of `buf` to drop, and whether the node ended in it. `tail` holds
/// the last two bytes seen across calls (a terminator may straddle two buffers, or begin in
/// the bytes passed before the cut).
fn skip(buf: &[u8], cut: Cut, tail: &mut [u8; 2]) -> Step {
    let (last, terminator): (u8, &'static [u8]) = match cut {
        Cut::Text => {
            return match memchr(b'<', buf) {
                // The `<` is the next node's: it passes.
                Some(at) => Step::Drop {
                    bytes: at,
                    terminator: b"",
                    ended: true,
                },
                None => Step::Drop {
                    bytes: buf.len(),
                    terminator: b"",
                    ended: false,
                },
            };
        }
        Cut::Comment => (b'-', b"-->"),
        Cut::CData => (b']', b"]]>"),
    };
    let mut from = 0;
    while let Some(at) = memchr2(b'>', last, &buf[from..]) {
        let j = from + at;
        if j > from {
            *tail = [0, 0];
        }
        if buf[j] == b'>' && *tail == [last, last] {
            return Step::Drop {
                bytes: j + 1,
                terminator,
                ended: true,
            };
        }
        *tail = [tail[1], buf[j]];
        from = j + 1;
    }
    if from < buf.len() {
        *tail = [0, 0];
    }
    Step::Drop {
        bytes: buf.len(),
        terminator: b"",
        ended: false,
    }
}

impl<R: BufRead> Read for NodeGuard<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let available = self.fill_buf()?;
        let n = available.len().min(out.len());
        out[..n].copy_from_slice(&available[..n]);
        self.consume(n);
        Ok(n)
    }
}

impl<R: BufRead> BufRead for NodeGuard<R> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        if !self.inject.is_empty() {
            return Ok(self.inject);
        }
        let cut = match self.cutting {
            Some(cut) => cut,
            None => {
                let used = self.consumed - self.node_start;
                if used < self.max {
                    // Never more than the node may still take: an inner reader over a slice
                    // would hand the whole rest of the input at once.
                    let room = usize::try_from(self.max - used).unwrap_or(usize::MAX);
                    let buf = self.inner.fill_buf()?;
                    return Ok(&buf[..buf.len().min(room)]);
                }
                let cut = self.kind()?;
                self.cutting = Some(cut);
                cut
            }
        };
        loop {
            let step = {
                let buf = self.inner.fill_buf()?;
                if buf.is_empty() {
                    Step::Pass(0)
                } else if !self.skipping {
                    match still_passing(buf) {
                        0 => {
                            self.skipping = true;
                            self.dropped = 0;
                            self.tail = self.last;
                            skip(buf, cut, &mut self.tail)
                        }
                        pass => Step::Pass(pass),
                    }
                } else {
                    skip(buf, cut, &mut self.tail)
                }
            };
            match step {
                Step::Pass(n) => return Ok(&self.inner.fill_buf()?[..n]),
                Step::Drop {
                    bytes,
                    terminator,
                    ended,
                } => {
                    self.inner.consume(bytes);
                    self.consumed += bytes as u64;
                    self.skipped += bytes as u64;
                    self.dropped += bytes as u64;
                    if ended {
                        self.cutting = None;
                        self.skipping = false;
                        self.tail = [0, 0];
                        // What of the terminator was skipped goes back in (its first bytes
                        // may have passed before the cut).
                        let skipped_of_it = terminator.len().min(self.dropped as usize);
                        let mut terminator = &terminator[terminator.len() - skipped_of_it..];
                        if terminator == b"-->" && self.last[1] == b'-' {
                            // A comment may not end in `-`; the space is not part of the input
                            // but of a comment, which nobody reads.
                            terminator = b" -->";
                        }
                        self.skipped -= terminator.len() as u64;
                        self.inject = terminator;
                        if !terminator.is_empty() {
                            return Ok(self.inject);
                        }
                        // A text ended at a `<`: pass on from it.
                        return self.inner.fill_buf();
                    }
                }
            }
        }
    }

    fn consume(&mut self, amount: usize) {
        if !self.inject.is_empty() {
            self.inject = &self.inject[amount.min(self.inject.len())..];
            return;
        }
        if amount == 0 {
            return;
        }
        // The bytes consumed are still in the inner buffer: keep the node's first ones, and
        // the last two once a cut is near (the inner reader answers from its buffer, without
        // reading).
        let near_cut = self.consumed + amount as u64 + 2 >= self.node_start + self.max;
        if self.prefix_len < self.prefix.len() || near_cut {
            if let Ok(buf) = self.inner.fill_buf() {
                let amount = amount.min(buf.len());
                if self.prefix_len < self.prefix.len() {
                    let n = (self.prefix.len() - self.prefix_len).min(amount);
                    self.prefix[self.prefix_len..self.prefix_len + n].copy_from_slice(&buf[..n]);
                    self.prefix_len += n;
                }
                if near_cut {
                    self.last = match amount {
                        0 => self.last,
                        1 => [self.last[1], buf[0]],
                        _ => [buf[amount - 2], buf[amount - 1]],
                    };
                }
            }
        }
        self.inner.consume(amount);
        self.consumed += amount as u64;
    }
}
