//! Reading a file as a stream, in offset order: the only way an HTTP body or a browser file
//! can be read without holding it whole. A safetensors body is consumed tensor by tensor: the
//! reader hands out the bytes of one tensor at a time and skips what the model does not use.

use super::WeightError;

/// A body that arrives in chunks, in order (an HTTP response, a file, a browser `Blob`).
#[allow(async_fn_in_trait)]
pub trait ChunkStream {
    /// The next bytes, or `None` at the end of the body. The error says what failed, in words.
    async fn next_chunk(&mut self) -> Result<Option<Vec<u8>>, String>;
}

/// A body already in memory, handed out in chunks of a fixed size (tests, small files).
pub struct MemoryStream {
    bytes: Vec<u8>,
    at: usize,
    chunk: usize,
}

impl MemoryStream {
    /// `bytes` handed out `chunk` bytes at a time.
    pub fn new(bytes: Vec<u8>, chunk: usize) -> Self {
        MemoryStream {
            bytes,
            at: 0,
            chunk: chunk.max(1),
        }
    }
}

impl ChunkStream for MemoryStream {
    async fn next_chunk(&mut self) -> Result<Option<Vec<u8>>, String> {
        if self.at >= self.bytes.len() {
            return Ok(None);
        }
        let end = (self.at + self.chunk).min(self.bytes.len());
        let chunk = self.bytes[self.at..end].to_vec();
        self.at = end;
        Ok(Some(chunk))
    }
}

/// Reads a stream that starts at byte `offset` of a file, forward only. Positions are file
/// offsets, so that a safetensors header's byte ranges can be used as they are.
pub struct StreamReader<S> {
    file: String,
    stream: S,
    buffer: Vec<u8>,
    consumed: usize,
    position: u64,
    received: u64,
}

impl<S: ChunkStream> StreamReader<S> {
    /// A reader of `stream`, whose first byte is byte `offset` of the file labelled `file`.
    pub fn new(file: &str, stream: S, offset: u64) -> Self {
        StreamReader {
            file: file.to_string(),
            stream,
            buffer: Vec::new(),
            consumed: 0,
            position: offset,
            received: 0,
        }
    }

    /// The file offset of the next byte.
    pub fn position(&self) -> u64 {
        self.position
    }

    /// Bytes received from the stream so far.
    pub fn received(&self) -> u64 {
        self.received
    }

    /// The underlying stream.
    pub fn stream(&self) -> &S {
        &self.stream
    }

    /// The bytes from the current position up to file offset `end`. `what` names the part
    /// being read in errors (e.g. `tensor "conv_in.weight"`); `on_bytes` hears of every chunk
    /// that arrives.
    pub async fn read_to(
        &mut self,
        end: u64,
        what: &str,
        on_bytes: &mut impl FnMut(u64),
    ) -> Result<Vec<u8>, WeightError> {
        let wanted = self.distance_to(end)?;
        let mut out = Vec::with_capacity(wanted);
        while out.len() < wanted {
            if self.consumed == self.buffer.len() {
                self.refill(what, on_bytes).await?;
            }
            let available = &self.buffer[self.consumed..];
            let take = available.len().min(wanted - out.len());
            out.extend_from_slice(&available[..take]);
            self.consumed += take;
            self.position += take as u64;
        }
        Ok(out)
    }

    /// Moves forward to file offset `end`, dropping the bytes in between.
    pub async fn skip_to(
        &mut self,
        end: u64,
        what: &str,
        on_bytes: &mut impl FnMut(u64),
    ) -> Result<(), WeightError> {
        let mut left = self.distance_to(end)?;
        while left > 0 {
            if self.consumed == self.buffer.len() {
                self.refill(what, on_bytes).await?;
            }
            let take = (self.buffer.len() - self.consumed).min(left);
            self.consumed += take;
            self.position += take as u64;
            left -= take;
        }
        Ok(())
    }

    /// Whether the stream has ended exactly here (no bytes left).
    pub async fn at_end(&mut self, on_bytes: &mut impl FnMut(u64)) -> Result<bool, WeightError> {
        while self.consumed == self.buffer.len() {
            match self.next("the end of the file", on_bytes).await? {
                Some(()) => {}
                None => return Ok(true),
            }
        }
        Ok(false)
    }

    fn distance_to(&self, end: u64) -> Result<usize, WeightError> {
        end.checked_sub(self.position)
            .map(|n| n as usize)
            .ok_or_else(|| WeightError::Io {
                file: self.file.clone(),
                detail: format!(
                    "cannot read backwards from byte {} to byte {end}",
                    self.position
                ),
            })
    }

    async fn refill(
        &mut self,
        what: &str,
        on_bytes: &mut impl FnMut(u64),
    ) -> Result<(), WeightError> {
        loop {
            match self.next(what, on_bytes).await? {
                Some(()) if self.consumed < self.buffer.len() => return Ok(()),
                Some(()) => continue,
                None => {
                    return Err(WeightError::Truncated {
                        file: self.file.clone(),
                        detail: format!("the data ends at byte {}, inside {what}", self.position),
                    })
                }
            }
        }
    }

    /// Takes the next chunk into the buffer; `None` at the end of the stream.
    async fn next(
        &mut self,
        what: &str,
        on_bytes: &mut impl FnMut(u64),
    ) -> Result<Option<()>, WeightError> {
        match self.stream.next_chunk().await {
            Ok(Some(chunk)) => {
                self.received += chunk.len() as u64;
                on_bytes(chunk.len() as u64);
                self.buffer = chunk;
                self.consumed = 0;
                Ok(Some(()))
            }
            Ok(None) => Ok(None),
            Err(detail) => Err(WeightError::Io {
                file: self.file.clone(),
                detail: format!(
                    "the transfer failed at byte {}, inside {what}: {detail}",
                    self.position
                ),
            }),
        }
    }
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use super::*;

    #[test]
    fn reads_and_skips_across_chunk_boundaries() {
        let bytes: Vec<u8> = (0..100u8).collect();
        let mut reader = StreamReader::new("f", MemoryStream::new(bytes[10..].to_vec(), 7), 10);
        let mut seen = 0;
        let mut count = |n| seen += n;
        pollster::block_on(async {
            assert_eq!(
                reader.read_to(15, "a", &mut count).await.unwrap(),
                bytes[10..15]
            );
            reader.skip_to(40, "gap", &mut count).await.unwrap();
            assert_eq!(
                reader.read_to(61, "b", &mut count).await.unwrap(),
                bytes[40..61]
            );
            assert_eq!(
                reader.read_to(61, "empty", &mut count).await.unwrap(),
                Vec::<u8>::new()
            );
            assert_eq!(
                reader.read_to(100, "c", &mut count).await.unwrap(),
                bytes[61..100]
            );
            assert!(reader.at_end(&mut count).await.unwrap());
        });
        assert_eq!(seen, 90);
    }

    #[test]
    fn an_early_end_names_the_part_cut_off() {
        let mut reader = StreamReader::new("f.safetensors", MemoryStream::new(vec![0; 20], 8), 0);
        let err = pollster::block_on(reader.read_to(30, "tensor \"x\"", &mut |_| {})).unwrap_err();
        assert!(matches!(err, WeightError::Truncated { .. }), "{err:?}");
        let text = err.to_string();
        assert!(
            text.contains("f.safetensors") && text.contains("tensor \"x\"") && text.contains("20"),
            "{text}"
        );
    }
}
