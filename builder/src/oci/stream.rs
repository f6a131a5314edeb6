//! A stored layer's tar stream given back for export, save and push: rebuilt from its
//! `tar-split.zst` and its extracted files (see tarsplit.rs), hashed on the way, and checked
//! against the DiffID at the end, so that nothing but the original stream leaves the store.
//! No kernel interface of its own.

use std::io::Read;

use store::Store;

use super::OciError;
use crate::tarsplit::{Digesting, Reassembly};

/// The stream of one layer, being read.
pub struct LayerStream {
    pub hex: String,
    /// bytes of the uncompressed stream, as recorded at import
    pub size: u64,
    reader: Digesting<Reassembly>,
}

impl LayerStream {
    /// Opens layer `hex`; one line when its stream cannot be given back.
    pub fn open(store: &Store, hex: &str) -> Result<LayerStream, OciError> {
        let meta = store.layer_meta(hex)?;
        if let Some(why) = &meta.tar_split_lost {
            return Err(OciError::msg(format!(
                "layer sha256:{hex} cannot be exported: its tar stream cannot be rebuilt ({why})"
            )));
        }
        if meta.tar_split.is_none() {
            return Err(OciError::msg(format!(
                "layer sha256:{hex} was imported before rbuild kept tar streams, so its stream cannot be rebuilt: `rbuild layer add` its source ({}) again to make it exportable",
                meta.source
            )));
        }
        let split = store.tar_split_path(hex);
        let rootfs = store.layer_dir(hex).join("rootfs");
        let r = Reassembly::open(&split, &rootfs)
            .map_err(|e| OciError::msg(format!("layer sha256:{hex}: {}: {e}", split.display())))?;
        Ok(LayerStream {
            hex: hex.to_string(),
            size: meta.size,
            reader: Digesting::new(r),
        })
    }

    /// Checks, once everything was read, that the stream was the layer's own.
    pub fn finish(&self) -> Result<(), OciError> {
        let got = self.reader.hex();
        if got != self.hex || self.reader.len != self.size {
            return Err(OciError::msg(format!(
                "layer sha256:{} cannot be exported: the stream rebuilt from its files hashes to sha256:{got} ({} bytes): a file in layers/{}/rootfs changed since import",
                self.hex, self.reader.len, self.hex
            )));
        }
        Ok(())
    }
}

impl Read for LayerStream {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.reader.read(buf).map_err(|e| {
            std::io::Error::new(
                e.kind(),
                format!("layer sha256:{} cannot be rebuilt: {e}", self.hex),
            )
        })
    }
}
