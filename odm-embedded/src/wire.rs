//! The MongoDB wire protocol: message framing, `OP_MSG`, legacy `OP_QUERY`, and replies.
//!
//! This layer turns bytes into [`Request`]s and replies into bytes. It knows nothing of
//! commands or storage. Anything malformed is reported as a [`WireError`]; the connection
//! decides whether that warrants an error reply or closing the socket.

use bson::{Document, RawBsonRef, RawDocument};
use std::fmt;
use tokio::io::{AsyncRead, AsyncReadExt};

/// Size of the standard message header (`messageLength`, `requestID`, `responseTo`, `opCode`).
pub const HEADER_LEN: usize = 16;
/// The largest message accepted, advertised to clients as `maxMessageSizeBytes`.
pub const MAX_MESSAGE_SIZE: usize = 48_000_000;
/// The largest BSON document accepted from a client, advertised as `maxBsonObjectSize`.
pub const MAX_BSON_OBJECT_SIZE: usize = 16 * 1024 * 1024;
/// Deepest nesting of documents and arrays accepted (MongoDB's default limit for commands).
pub const MAX_BSON_DEPTH: usize = 200;

/// `OP_REPLY`, the legacy reply to `OP_QUERY`.
pub const OP_REPLY: i32 = 1;
/// `OP_QUERY`, accepted only for the `hello`/`isMaster` handshake.
pub const OP_QUERY: i32 = 2004;
/// `OP_MSG`, the protocol of every modern command.
pub const OP_MSG: i32 = 2013;

const FLAG_CHECKSUM_PRESENT: u32 = 1;
const FLAG_MORE_TO_COME: u32 = 1 << 1;
const FLAG_EXHAUST_ALLOWED: u32 = 1 << 16;
/// Bits 0-15 are "required": a receiver must fail on any it does not know.
const REQUIRED_BITS: u32 = 0xFFFF;

/// The standard message header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Total length of the message, header included.
    pub length: i32,
    /// The sender's identifier for this message.
    pub request_id: i32,
    /// The request this message answers (0 in requests).
    pub response_to: i32,
    /// The message's opcode.
    pub op_code: i32,
}

impl Header {
    fn parse(bytes: &[u8; HEADER_LEN]) -> Self {
        let field =
            |i: usize| i32::from_le_bytes([bytes[i], bytes[i + 1], bytes[i + 2], bytes[i + 3]]);
        Self {
            length: field(0),
            request_id: field(4),
            response_to: field(8),
            op_code: field(12),
        }
    }
}

/// A decoded client message.
#[derive(Debug, Clone, PartialEq)]
pub enum Request {
    /// An `OP_MSG` command; document sequences are already folded into `body`.
    Msg {
        /// The command document.
        body: Document,
        /// The client wants no reply (`moreToCome`).
        more_to_come: bool,
        /// The client allows an exhaust-style stream of replies.
        exhaust_allowed: bool,
    },
    /// A legacy `OP_QUERY` against `<db>.$cmd`.
    Query {
        /// `fullCollectionName` of the query, e.g. `admin.$cmd`.
        namespace: String,
        /// The query document (the command).
        query: Document,
    },
}

/// A message that could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WireError {
    /// The length prefix is below the header size or above [`MAX_MESSAGE_SIZE`].
    BadLength(i32),
    /// The peer closed the connection in the middle of a message.
    Truncated,
    /// The opcode is unknown or not supported here.
    UnsupportedOpCode(i32),
    /// The message is framed correctly but its contents are malformed.
    Malformed(String),
    /// A document in the message is not valid BSON.
    InvalidBson(String),
}

impl WireError {
    /// Whether the connection can go on after this error (the framing is intact).
    pub fn is_recoverable(&self) -> bool {
        matches!(self, WireError::Malformed(_) | WireError::InvalidBson(_))
    }
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WireError::BadLength(len) => write!(
                f,
                "message length {len} is outside the accepted range {HEADER_LEN}..={MAX_MESSAGE_SIZE}"
            ),
            WireError::Truncated => f.write_str("connection closed in the middle of a message"),
            WireError::UnsupportedOpCode(op) => write!(f, "unsupported opcode {op}"),
            WireError::Malformed(msg) => write!(f, "malformed message: {msg}"),
            WireError::InvalidBson(msg) => write!(f, "invalid BSON: {msg}"),
        }
    }
}

impl std::error::Error for WireError {}

/// Reads one framed message. `Ok(None)` means the peer closed the connection cleanly
/// between messages.
pub async fn read_message<R: AsyncRead + Unpin>(
    reader: &mut R,
) -> Result<Option<(Header, Vec<u8>)>, WireError> {
    let mut head = [0u8; HEADER_LEN];
    let mut filled = 0;
    while filled < HEADER_LEN {
        match reader.read(&mut head[filled..]).await {
            Ok(0) if filled == 0 => return Ok(None),
            Ok(0) | Err(_) => return Err(WireError::Truncated),
            Ok(n) => filled += n,
        }
    }
    let header = Header::parse(&head);
    let length = usize::try_from(header.length).map_err(|_| WireError::BadLength(header.length))?;
    if !(HEADER_LEN..=MAX_MESSAGE_SIZE).contains(&length) {
        return Err(WireError::BadLength(header.length));
    }
    let mut payload = vec![0u8; length - HEADER_LEN];
    reader
        .read_exact(&mut payload)
        .await
        .map_err(|_| WireError::Truncated)?;
    Ok(Some((header, payload)))
}

/// Decodes the payload (the bytes after the header) of a message.
pub fn decode(header: &Header, payload: &[u8]) -> Result<Request, WireError> {
    match header.op_code {
        OP_MSG => decode_msg(header, payload),
        OP_QUERY => decode_query(payload),
        other => Err(WireError::UnsupportedOpCode(other)),
    }
}

fn decode_msg(header: &Header, payload: &[u8]) -> Result<Request, WireError> {
    let mut cursor = Cursor::new(payload);
    let flags = cursor.u32()?;
    let unknown_required = flags & REQUIRED_BITS & !(FLAG_CHECKSUM_PRESENT | FLAG_MORE_TO_COME);
    if unknown_required != 0 {
        return Err(WireError::Malformed(format!(
            "unknown required OP_MSG flag bits {unknown_required:#x}"
        )));
    }
    let mut end = payload.len();
    if flags & FLAG_CHECKSUM_PRESENT != 0 {
        if payload.len() < 8 {
            return Err(WireError::Malformed(
                "checksum flag set but no checksum".into(),
            ));
        }
        end -= 4;
        let expected = u32::from_le_bytes([
            payload[end],
            payload[end + 1],
            payload[end + 2],
            payload[end + 3],
        ]);
        let mut head = Vec::with_capacity(HEADER_LEN);
        for field in [
            header.length,
            header.request_id,
            header.response_to,
            header.op_code,
        ] {
            head.extend_from_slice(&field.to_le_bytes());
        }
        let actual = crc32c::crc32c_append(crc32c::crc32c(&head), &payload[..end]);
        if actual != expected {
            return Err(WireError::Malformed(format!(
                "checksum mismatch: message says {expected:#010x}, contents give {actual:#010x}"
            )));
        }
    }
    cursor.end = end;

    let mut body: Option<Document> = None;
    let mut sequences: Vec<(String, Vec<Document>)> = Vec::new();
    while !cursor.is_empty() {
        match cursor.u8()? {
            0 => {
                if body.is_some() {
                    return Err(WireError::Malformed("more than one kind-0 section".into()));
                }
                body = Some(cursor.document()?);
            }
            1 => {
                let size = cursor.i32()?;
                let size = usize::try_from(size)
                    .ok()
                    .filter(|s| *s >= 5 && *s - 4 <= cursor.remaining())
                    .ok_or_else(|| {
                        WireError::Malformed(format!(
                            "document sequence size {size} is out of bounds"
                        ))
                    })?;
                let mut section = Cursor::new(cursor.take(size - 4)?);
                let identifier = section.cstring()?;
                let mut docs = Vec::new();
                while !section.is_empty() {
                    docs.push(section.document()?);
                }
                sequences.push((identifier, docs));
            }
            kind => {
                return Err(WireError::Malformed(format!("unknown section kind {kind}")));
            }
        }
    }
    let mut body = body.ok_or_else(|| WireError::Malformed("no kind-0 section".into()))?;
    for (identifier, docs) in sequences {
        if body.contains_key(&identifier) {
            return Err(WireError::Malformed(format!(
                "document sequence '{identifier}' duplicates a field of the body"
            )));
        }
        body.insert(
            identifier,
            bson::Bson::Array(docs.into_iter().map(bson::Bson::Document).collect()),
        );
    }
    Ok(Request::Msg {
        body,
        more_to_come: flags & FLAG_MORE_TO_COME != 0,
        exhaust_allowed: flags & FLAG_EXHAUST_ALLOWED != 0,
    })
}

fn decode_query(payload: &[u8]) -> Result<Request, WireError> {
    let mut cursor = Cursor::new(payload);
    let _flags = cursor.i32()?;
    let namespace = cursor.cstring()?;
    let _skip = cursor.i32()?;
    let _to_return = cursor.i32()?;
    let query = cursor.document()?;
    // An optional `returnFieldsSelector` may follow; commands ignore it.
    Ok(Request::Query { namespace, query })
}

/// Encodes an `OP_MSG` reply carrying `body`.
pub fn encode_msg(request_id: i32, response_to: i32, body: &Document) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(256);
    bytes.extend_from_slice(&[0u8; HEADER_LEN]);
    bytes.extend_from_slice(&0u32.to_le_bytes());
    bytes.push(0);
    write_document(&mut bytes, body);
    finish(bytes, request_id, response_to, OP_MSG)
}

/// Encodes a legacy `OP_REPLY` carrying one document.
pub fn encode_reply(request_id: i32, response_to: i32, body: &Document) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(256);
    bytes.extend_from_slice(&[0u8; HEADER_LEN]);
    bytes.extend_from_slice(&0i32.to_le_bytes()); // responseFlags
    bytes.extend_from_slice(&0i64.to_le_bytes()); // cursorID
    bytes.extend_from_slice(&0i32.to_le_bytes()); // startingFrom
    bytes.extend_from_slice(&1i32.to_le_bytes()); // numberReturned
    write_document(&mut bytes, body);
    finish(bytes, request_id, response_to, OP_REPLY)
}

fn write_document(bytes: &mut Vec<u8>, doc: &Document) {
    // Serializing a `Document` into a Vec cannot fail for documents built by the server.
    if doc.to_writer(&mut *bytes).is_err() {
        let fallback = crate::error::CommandError::new(1, "reply could not be encoded").to_reply();
        let _ = fallback.to_writer(bytes);
    }
}

fn finish(mut bytes: Vec<u8>, request_id: i32, response_to: i32, op_code: i32) -> Vec<u8> {
    let length = bytes.len() as i32;
    bytes[0..4].copy_from_slice(&length.to_le_bytes());
    bytes[4..8].copy_from_slice(&request_id.to_le_bytes());
    bytes[8..12].copy_from_slice(&response_to.to_le_bytes());
    bytes[12..16].copy_from_slice(&op_code.to_le_bytes());
    bytes
}

/// Checks a raw document's structure and nesting depth without recursion, so that no
/// input, however deep, can exhaust the stack of the code that decodes it afterwards.
pub fn validate_raw(doc: &RawDocument) -> Result<(), String> {
    type Values<'a> = Box<dyn Iterator<Item = bson::raw::Result<RawBsonRef<'a>>> + 'a>;
    fn values(doc: &RawDocument) -> Values<'_> {
        Box::new(doc.into_iter().map(|entry| entry.map(|(_, value)| value)))
    }
    let mut stack: Vec<Values<'_>> = vec![values(doc)];
    while let Some(top) = stack.last_mut() {
        match top.next() {
            None => {
                stack.pop();
            }
            Some(Err(err)) => return Err(err.to_string()),
            Some(Ok(value)) => {
                let nested: Option<Values<'_>> = match value {
                    RawBsonRef::Document(d) => Some(values(d)),
                    RawBsonRef::Array(a) => Some(Box::new(a.into_iter())),
                    RawBsonRef::JavaScriptCodeWithScope(c) => Some(values(c.scope)),
                    _ => None,
                };
                if let Some(nested) = nested {
                    if stack.len() >= MAX_BSON_DEPTH {
                        return Err(format!("nesting depth exceeds {MAX_BSON_DEPTH}"));
                    }
                    stack.push(nested);
                }
            }
        }
    }
    Ok(())
}

/// A bounds-checked reader over a byte slice.
struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
    end: usize,
}

impl<'a> Cursor<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Self {
            bytes,
            pos: 0,
            end: bytes.len(),
        }
    }

    fn is_empty(&self) -> bool {
        self.pos >= self.end
    }

    fn remaining(&self) -> usize {
        self.end.saturating_sub(self.pos)
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], WireError> {
        if n > self.remaining() {
            return Err(WireError::Malformed(format!(
                "needs {n} more bytes, {} left",
                self.remaining()
            )));
        }
        let slice = &self.bytes[self.pos..self.pos + n];
        self.pos += n;
        Ok(slice)
    }

    fn u8(&mut self) -> Result<u8, WireError> {
        Ok(self.take(1)?[0])
    }

    fn u32(&mut self) -> Result<u32, WireError> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn i32(&mut self) -> Result<i32, WireError> {
        Ok(self.u32()? as i32)
    }

    fn cstring(&mut self) -> Result<String, WireError> {
        let rest = &self.bytes[self.pos..self.end];
        let nul = rest
            .iter()
            .position(|b| *b == 0)
            .ok_or_else(|| WireError::Malformed("unterminated C string".into()))?;
        let text = std::str::from_utf8(&rest[..nul])
            .map_err(|_| WireError::Malformed("C string is not UTF-8".into()))?
            .to_owned();
        self.pos += nul + 1;
        Ok(text)
    }

    fn document(&mut self) -> Result<Document, WireError> {
        let rest = &self.bytes[self.pos..self.end];
        if rest.len() < 5 {
            return Err(WireError::InvalidBson(
                "document shorter than 5 bytes".into(),
            ));
        }
        let declared = i32::from_le_bytes([rest[0], rest[1], rest[2], rest[3]]);
        let len = usize::try_from(declared)
            .ok()
            .filter(|len| (5..=rest.len()).contains(len))
            .ok_or_else(|| {
                WireError::InvalidBson(format!(
                    "document length {declared} does not fit the {} bytes left",
                    rest.len()
                ))
            })?;
        if len > MAX_BSON_OBJECT_SIZE + 16 * 1024 {
            return Err(WireError::InvalidBson(format!(
                "document of {len} bytes exceeds the maximum of {MAX_BSON_OBJECT_SIZE}"
            )));
        }
        let bytes = &rest[..len];
        let raw =
            RawDocument::from_bytes(bytes).map_err(|e| WireError::InvalidBson(e.to_string()))?;
        validate_raw(raw).map_err(WireError::InvalidBson)?;
        // The raw conversion recurses with small frames; serde's reader would overflow a
        // 2 MiB task stack well below the depth limit in unoptimized builds.
        let doc = Document::try_from(raw).map_err(|e| WireError::InvalidBson(e.to_string()))?;
        self.pos += len;
        Ok(doc)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bson::doc;

    fn msg_payload(flags: u32, sections: &[u8]) -> Vec<u8> {
        let mut p = flags.to_le_bytes().to_vec();
        p.extend_from_slice(sections);
        p
    }

    fn header(len: usize) -> Header {
        Header {
            length: len as i32,
            request_id: 7,
            response_to: 0,
            op_code: OP_MSG,
        }
    }

    #[test]
    fn decodes_body_and_document_sequence() {
        let mut sections = vec![0u8];
        doc! { "insert": "c", "$db": "d" }
            .to_writer(&mut sections)
            .unwrap();
        let mut seq = Vec::new();
        seq.extend_from_slice(b"documents\0");
        doc! { "a": 1 }.to_writer(&mut seq).unwrap();
        doc! { "a": 2 }.to_writer(&mut seq).unwrap();
        sections.push(1);
        sections.extend_from_slice(&((seq.len() + 4) as i32).to_le_bytes());
        sections.extend_from_slice(&seq);
        let payload = msg_payload(0, &sections);
        let Request::Msg { body, .. } = decode(&header(payload.len() + 16), &payload).unwrap()
        else {
            panic!("expected OP_MSG");
        };
        assert_eq!(
            body,
            doc! { "insert": "c", "$db": "d", "documents": [{ "a": 1 }, { "a": 2 }] }
        );
    }

    #[test]
    fn verifies_checksum() {
        let mut sections = vec![0u8];
        doc! { "ping": 1 }.to_writer(&mut sections).unwrap();
        let mut payload = msg_payload(FLAG_CHECKSUM_PRESENT, &sections);
        let h = header(payload.len() + 4 + 16);
        let mut head = Vec::new();
        for f in [h.length, h.request_id, h.response_to, h.op_code] {
            head.extend_from_slice(&f.to_le_bytes());
        }
        let crc = crc32c::crc32c_append(crc32c::crc32c(&head), &payload);
        let mut good = payload.clone();
        good.extend_from_slice(&crc.to_le_bytes());
        assert!(decode(&h, &good).is_ok());
        payload.extend_from_slice(&(crc ^ 1).to_le_bytes());
        assert!(
            matches!(decode(&h, &payload), Err(WireError::Malformed(m)) if m.contains("checksum"))
        );
    }

    #[test]
    fn rejects_malformed_sections() {
        assert!(matches!(
            decode(&header(21), &msg_payload(0, &[9])),
            Err(WireError::Malformed(_))
        ));
        assert!(matches!(
            decode(&header(20), &msg_payload(0, &[])),
            Err(WireError::Malformed(_))
        ));
        // A kind-0 section whose document claims more bytes than there are.
        let bad = msg_payload(0, &[0, 200, 0, 0, 0, 0]);
        assert!(matches!(
            decode(&header(26), &bad),
            Err(WireError::InvalidBson(_))
        ));
        assert!(matches!(
            decode(
                &Header {
                    op_code: 9999,
                    ..header(16)
                },
                &[]
            ),
            Err(WireError::UnsupportedOpCode(9999))
        ));
    }

    /// `{a: {a: ... {}}}` nested `depth` times, built as bytes (no recursion).
    fn nested(depth: usize) -> Vec<u8> {
        let mut bytes = vec![5, 0, 0, 0, 0];
        for _ in 0..depth {
            let len = (4 + 1 + 2 + bytes.len() + 1) as i32;
            let mut outer = len.to_le_bytes().to_vec();
            outer.extend_from_slice(&[3, b'a', 0]);
            outer.extend_from_slice(&bytes);
            outer.push(0);
            bytes = outer;
        }
        bytes
    }

    #[test]
    fn refuses_excessive_nesting_without_overflowing() {
        let deep = nested(100_000);
        let raw = RawDocument::from_bytes(&deep).unwrap();
        assert!(validate_raw(raw).unwrap_err().contains("depth"));
        let ok = nested(MAX_BSON_DEPTH - 1);
        assert!(validate_raw(RawDocument::from_bytes(&ok).unwrap()).is_ok());
        let mut cursor = Cursor::new(&ok);
        let doc = cursor.document().unwrap();
        let mut back = Vec::new();
        doc.to_writer(&mut back).unwrap();
        assert_eq!(back, ok);
    }
}
