//! What RSE OS's host tests share: a file as the block device, fresh
//! images from mkfs.ext4, and e2fsck's verdict.

use std::{
    cell::Cell,
    fs::{File, OpenOptions},
    io::{Read, Seek, SeekFrom, Write},
    path::{Path, PathBuf},
    process::Command,
};

use rsext4::{
    error::{Ext4Error, Ext4Result},
    *,
};

pub struct FileBlockDevice {
    file: File,
    total_blocks: u64,
    now: Cell<i64>,
}

impl FileBlockDevice {
    pub fn open(path: &Path) -> Self {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .expect("open image");
        let len = file.metadata().expect("image metadata").len();
        Self {
            file,
            total_blocks: len / BLOCK_SIZE as u64,
            now: Cell::new(1_700_000_000),
        }
    }
}

impl BlockIo for FileBlockDevice {
    fn read(&mut self, buffer: &mut [u8], sector: SectorId, count: u32) -> Ext4Result<()> {
        let required = BLOCK_SIZE * count as usize;
        let start = sector.raw() * BLOCK_SIZE as u64;
        self.file
            .seek(SeekFrom::Start(start))
            .map_err(|_| Ext4Error::io())?;
        self.file
            .read_exact(&mut buffer[..required])
            .map_err(|_| Ext4Error::io())
    }

    fn write(&mut self, buffer: &[u8], sector: SectorId, count: u32) -> Ext4Result<()> {
        let required = BLOCK_SIZE * count as usize;
        let start = sector.raw() * BLOCK_SIZE as u64;
        self.file
            .seek(SeekFrom::Start(start))
            .map_err(|_| Ext4Error::io())?;
        self.file
            .write_all(&buffer[..required])
            .map_err(|_| Ext4Error::io())
    }

    fn flush(&mut self) -> Ext4Result<()> {
        Ok(())
    }

    fn geometry(&self) -> DeviceGeometry {
        DeviceGeometry::new(BLOCK_SIZE as u32, self.total_blocks)
    }

    fn capabilities(&self) -> DeviceCapabilities {
        DeviceCapabilities {
            read_only: false,
            flush: true,
            ..DeviceCapabilities::default()
        }
    }
}

impl Clock for FileBlockDevice {
    fn now(&self) -> Ext4Result<Ext4Timestamp> {
        let sec = self.now.get();
        self.now.set(sec + 1);
        Ok(Ext4Timestamp::new(sec, 0))
    }
}

pub fn tool_available(tool: &str) -> bool {
    Command::new(tool).arg("-V").output().is_ok()
}

/// A fresh ext4 image with a fixed directory hash seed (the seed decides
/// which names share a leaf, hence which renames split the source's leaf).
pub fn make_image(name: &str, size: &str, hash_seed: &str) -> PathBuf {
    let image = std::env::temp_dir().join(format!("{name}-{}.img", std::process::id()));
    let _ = std::fs::remove_file(&image);
    let status = Command::new("mkfs.ext4")
        .args(["-F", "-q", "-b", "4096", "-E"])
        .arg(format!("hash_seed={hash_seed}"))
        .arg(&image)
        .arg(size)
        .status()
        .expect("run mkfs.ext4");
    assert!(status.success(), "mkfs.ext4 failed");
    image
}

pub fn e2fsck_clean(image: &Path) {
    let output = Command::new("e2fsck")
        .arg("-fn")
        .arg(image)
        .output()
        .expect("run e2fsck");
    assert!(
        output.status.success(),
        "e2fsck -fn: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}
