//! ELF64 x86_64 program loading plan, and `#!` script detection.
//!
//! [`parse`] reads an executable's header and program headers and returns an
//! [`ElfImage`]: what to map where, with which permissions, where to jump,
//! and what the initial stack's auxv must say (AT_PHDR, AT_PHNUM, AT_PHENT,
//! AT_ENTRY). It maps nothing itself: the kernel turns the plan into VMAs.
//!
//! The parser is our own rather than `xmas-elf`'s: `xmas-elf` 0.10 slices
//! program headers with unchecked offsets (`&input[start..end]`), so a
//! malformed file would panic the kernel. Here every offset and size read
//! from the file is checked against `data.len()` with overflow-checked
//! arithmetic, and anything odd is `ENOEXEC` — user input never panics.
//!
//! [`is_script`] implements Linux's `binfmt_script` parsing of a `#!` line.

use alloc::vec::Vec;

use crate::errno::{Errno, KResult};
use linux_raw_sys::elf::{PF_R, PF_W, PF_X, PT_GNU_STACK, PT_INTERP, PT_LOAD, PT_PHDR};

/// Page size the loader plans for.
pub const PAGE_SIZE: u64 = 4096;

/// First address above user space (Linux `TASK_SIZE` with 4-level paging):
/// no segment may reach past it.
pub const USER_TOP: u64 = 0x0000_7fff_ffff_f000;

/// Size of `Elf64_Ehdr`.
pub const EHDR_SIZE: usize = 64;
/// Size of `Elf64_Phdr`; the only `e_phentsize` Linux accepts.
pub const PHDR_SIZE: usize = 56;
/// Linux refuses more than 64 KiB of program headers (`load_elf_phdrs`).
const MAX_PHDR_BYTES: usize = 65536;
/// Linux's `PATH_MAX` bounds the PT_INTERP string.
const PATH_MAX: u64 = 4096;

// Target-independent header values. linux-raw-sys's ELFCLASS/EM_CURRENT
// follow the *build* target, so spell out the x86_64 ones here.
const ELFCLASS64: u8 = 2;
const ELFDATA2LSB: u8 = 1;
const EV_CURRENT: u8 = 1;
const ET_EXEC: u16 = 2;
const ET_DYN: u16 = 3;
const EM_X86_64: u16 = 62;

/// The ELF file type, which decides whether the image needs a load bias.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ElfKind {
    /// `ET_EXEC`: fixed addresses, loaded as linked.
    Exec,
    /// `ET_DYN`: position independent (static-pie, or an interpreter);
    /// the kernel picks a bias and calls [`ElfImage::with_bias`].
    Dyn,
}

/// One `PT_LOAD` segment: `filesz` bytes from `file_offset` land at
/// `vaddr`, and the rest up to `memsz` is zero (bss).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LoadSegment {
    /// Virtual address of the first byte (not necessarily page-aligned).
    pub vaddr: u64,
    /// Bytes in memory, `>= filesz`.
    pub memsz: u64,
    /// Offset of the first byte in the file; congruent to `vaddr` modulo
    /// [`PAGE_SIZE`], so the segment can be mapped page by page.
    pub file_offset: u64,
    /// Bytes taken from the file; `file_offset + filesz <= data.len()`.
    pub filesz: u64,
    /// `PF_R`.
    pub readable: bool,
    /// `PF_W`.
    pub writable: bool,
    /// `PF_X`.
    pub executable: bool,
}

impl LoadSegment {
    /// Page-aligned `[start, end)` the segment occupies. Two segments may
    /// share a page at their boundary; the loader then gives that page the
    /// union of their permissions and both segments' bytes.
    pub fn page_range(&self) -> (u64, u64) {
        // Cannot overflow: parse() checked vaddr + memsz <= USER_TOP.
        (
            page_down(self.vaddr),
            page_up(self.vaddr + self.memsz).unwrap_or(USER_TOP),
        )
    }
}

/// What the kernel needs to load and start a program.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ElfImage {
    /// `ET_EXEC` or `ET_DYN`.
    pub kind: ElfKind,
    /// Entry point (`AT_ENTRY`, and where the process starts unless an
    /// interpreter is loaded).
    pub entry: u64,
    /// Non-empty `PT_LOAD` segments in ascending, non-overlapping order.
    pub segments: Vec<LoadSegment>,
    /// Where the program headers are in memory (`AT_PHDR`); `None` if no
    /// segment maps them (libc then cannot find its TLS template, but
    /// exec itself still works, as on Linux).
    pub phdr_vaddr: Option<u64>,
    /// `AT_PHNUM`.
    pub phnum: u16,
    /// `AT_PHENT` (always [`PHDR_SIZE`]).
    pub phent: u16,
    /// `PT_INTERP` path without its NUL, for dynamically linked programs.
    pub interp: Option<Vec<u8>>,
    /// `PT_GNU_STACK` asked for an executable stack (the x86_64 default
    /// without that header is non-executable, as in Linux since 5.8).
    pub executable_stack: bool,
}

fn page_down(x: u64) -> u64 {
    x & !(PAGE_SIZE - 1)
}

fn page_up(x: u64) -> Option<u64> {
    Some(x.checked_add(PAGE_SIZE - 1)? & !(PAGE_SIZE - 1))
}

/// Little-endian field readers: `None` when out of bounds, never a panic.
fn rd<const N: usize>(data: &[u8], off: usize) -> Option<[u8; N]> {
    data.get(off..off.checked_add(N)?)?.try_into().ok()
}
fn u16_at(d: &[u8], off: usize) -> Option<u16> {
    rd(d, off).map(u16::from_le_bytes)
}
fn u32_at(d: &[u8], off: usize) -> Option<u32> {
    rd(d, off).map(u32::from_le_bytes)
}
fn u64_at(d: &[u8], off: usize) -> Option<u64> {
    rd(d, off).map(u64::from_le_bytes)
}

/// A raw program header.
struct Phdr {
    p_type: u32,
    p_flags: u32,
    p_offset: u64,
    p_vaddr: u64,
    p_filesz: u64,
    p_memsz: u64,
}

fn phdr_at(d: &[u8], off: usize) -> Option<Phdr> {
    Some(Phdr {
        p_type: u32_at(d, off)?,
        p_flags: u32_at(d, off + 4)?,
        p_offset: u64_at(d, off + 8)?,
        p_vaddr: u64_at(d, off + 16)?,
        p_filesz: u64_at(d, off + 32)?,
        p_memsz: u64_at(d, off + 40)?,
    })
}

/// Parses an ELF64 x86_64 executable into a loading plan.
///
/// `data` must hold the whole file (segments are checked to lie inside it).
/// Fails with `ENOEXEC` for anything that is not a well-formed little-endian
/// ELF64 x86_64 `ET_EXEC`/`ET_DYN` with at least one loadable segment.
pub fn parse(data: &[u8]) -> KResult<ElfImage> {
    parse_inner(data, data.len() as u64).ok_or(Errno::ENOEXEC)
}

/// [`parse`] from the first bytes of a file of `file_len` bytes: headers
/// (and a PT_INTERP path) must lie in `head`; segments are checked against
/// `file_len`. Lets exec map a binary without reading all of it first.
pub fn parse_headers(head: &[u8], file_len: u64) -> KResult<ElfImage> {
    if (head.len() as u64) > file_len {
        return Err(Errno::ENOEXEC);
    }
    parse_inner(head, file_len).ok_or(Errno::ENOEXEC)
}

fn parse_inner(d: &[u8], file_len: u64) -> Option<ElfImage> {
    // e_ident: magic, 64-bit, little-endian, version 1.
    if d.len() < EHDR_SIZE
        || d[0..4] != [0x7f, b'E', b'L', b'F']
        || d[4] != ELFCLASS64
        || d[5] != ELFDATA2LSB
        || d[6] != EV_CURRENT
    {
        return None;
    }
    let kind = match u16_at(d, 16)? {
        ET_EXEC => ElfKind::Exec,
        ET_DYN => ElfKind::Dyn,
        _ => return None,
    };
    if u16_at(d, 18)? != EM_X86_64 {
        return None;
    }
    let entry = u64_at(d, 24)?;
    let phoff = u64_at(d, 32)?;
    let phent = u16_at(d, 54)?;
    let phnum = u16_at(d, 56)?;
    if phent as usize != PHDR_SIZE || phnum == 0 {
        return None;
    }
    let ph_bytes = phnum as usize * PHDR_SIZE;
    if ph_bytes > MAX_PHDR_BYTES {
        return None;
    }
    let phoff_us = usize::try_from(phoff).ok()?;
    let ph_end = phoff_us.checked_add(ph_bytes)?;
    if ph_end > d.len() {
        return None;
    }

    let mut segments: Vec<LoadSegment> = Vec::new();
    let mut interp = None;
    let mut pt_phdr = None;
    let mut executable_stack = false;
    let mut phdr_vaddr = None;
    for i in 0..phnum as usize {
        let ph = phdr_at(d, phoff_us + i * PHDR_SIZE)?;
        match ph.p_type {
            PT_LOAD => {
                if ph.p_filesz > ph.p_memsz {
                    return None;
                }
                let file_end = ph.p_offset.checked_add(ph.p_filesz)?;
                if file_end > file_len {
                    return None;
                }
                let mem_end = ph.p_vaddr.checked_add(ph.p_memsz)?;
                // For ET_DYN the addresses are relative; they must still
                // fit in user space with bias 0 for any bias to work.
                if mem_end > USER_TOP {
                    return None;
                }
                // The file and memory views must agree within a page, or
                // the segment cannot be mapped page by page.
                if !ph
                    .p_vaddr
                    .wrapping_sub(ph.p_offset)
                    .is_multiple_of(PAGE_SIZE)
                {
                    return None;
                }
                // Linux derives AT_PHDR from the segment whose file bytes
                // hold the program headers.
                if phdr_vaddr.is_none()
                    && ph.p_offset <= phoff
                    && phoff.checked_add(ph_bytes as u64)? <= file_end
                {
                    phdr_vaddr = Some(ph.p_vaddr + (phoff - ph.p_offset));
                }
                if ph.p_memsz == 0 {
                    continue;
                }
                if let Some(prev) = segments.last() {
                    // Ascending and disjoint (ELF spec); sharing a page is fine.
                    if ph.p_vaddr < prev.vaddr + prev.memsz {
                        return None;
                    }
                }
                segments.push(LoadSegment {
                    vaddr: ph.p_vaddr,
                    memsz: ph.p_memsz,
                    file_offset: ph.p_offset,
                    filesz: ph.p_filesz,
                    readable: ph.p_flags & PF_R != 0,
                    writable: ph.p_flags & PF_W != 0,
                    executable: ph.p_flags & PF_X != 0,
                });
            }
            PT_INTERP if interp.is_none() => {
                // As Linux: 2..=PATH_MAX bytes, NUL-terminated, in the file.
                if ph.p_filesz < 2 || ph.p_filesz > PATH_MAX {
                    return None;
                }
                let start = usize::try_from(ph.p_offset).ok()?;
                let bytes = d.get(start..start.checked_add(ph.p_filesz as usize)?)?;
                let (last, path) = bytes.split_last()?;
                if *last != 0 {
                    return None;
                }
                // An embedded NUL ends the C string early, as it would on Linux.
                let len = path.iter().position(|&b| b == 0).unwrap_or(path.len());
                interp = Some(path[..len].to_vec());
            }
            PT_PHDR => pt_phdr = Some(ph.p_vaddr),
            PT_GNU_STACK => executable_stack = ph.p_flags & PF_X != 0,
            _ => {}
        }
    }
    if segments.is_empty() {
        return None;
    }
    Some(ElfImage {
        kind,
        entry,
        segments,
        phdr_vaddr: phdr_vaddr.or(pt_phdr),
        phnum,
        phent,
        interp,
        executable_stack,
    })
}

impl ElfImage {
    /// Page-aligned `[lowest, highest)` covering every segment: the span
    /// the kernel must find room for before picking an `ET_DYN` bias.
    pub fn load_bounds(&self) -> (u64, u64) {
        let lo = self.segments.first().map_or(0, |s| s.page_range().0);
        let hi = self.segments.last().map_or(0, |s| s.page_range().1);
        (lo, hi)
    }

    /// Where the heap starts: the first page above the highest segment
    /// (Linux's `start_brk` before brk randomisation).
    pub fn brk_start(&self) -> u64 {
        self.load_bounds().1
    }

    /// Relocates every address by `bias` (for `ET_DYN`). `EINVAL` if the
    /// bias is not page-aligned or is non-zero for `ET_EXEC`; `ENOMEM` if
    /// the biased image would not fit below [`USER_TOP`].
    pub fn with_bias(mut self, bias: u64) -> KResult<ElfImage> {
        if !bias.is_multiple_of(PAGE_SIZE) || (self.kind == ElfKind::Exec && bias != 0) {
            return Err(Errno::EINVAL);
        }
        let (_, hi) = self.load_bounds();
        match hi.checked_add(bias) {
            Some(end) if end <= USER_TOP => {}
            _ => return Err(Errno::ENOMEM),
        }
        // Everything below is <= hi (segments) or arbitrary file values
        // (entry, phdr), so the latter need checked adds.
        for s in &mut self.segments {
            s.vaddr += bias;
        }
        self.entry = self.entry.checked_add(bias).ok_or(Errno::ENOMEM)?;
        self.phdr_vaddr = match self.phdr_vaddr {
            Some(p) => Some(p.checked_add(bias).ok_or(Errno::ENOMEM)?),
            None => None,
        };
        Ok(self)
    }
}

/// A `#!` script's interpreter line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Script {
    /// The interpreter path (never contains NUL; may be empty, which then
    /// fails lookup with ENOENT as on Linux).
    pub interpreter: Vec<u8>,
    /// Everything after the first space/tab, trimmed: one argument, spaces
    /// included, as Linux passes it.
    pub arg: Option<Vec<u8>>,
}

impl Script {
    /// The argv the interpreter runs with: `interpreter [arg] filename
    /// argv[1..]` — the script's own argv[0] is replaced by the path that
    /// was executed, as Linux does.
    pub fn argv(&self, filename: &[u8], argv: &[&[u8]]) -> Vec<Vec<u8>> {
        let mut v = Vec::with_capacity(argv.len() + 2);
        v.push(self.interpreter.clone());
        if let Some(a) = &self.arg {
            v.push(a.clone());
        }
        v.push(filename.to_vec());
        v.extend(argv.iter().skip(1).map(|a| a.to_vec()));
        v
    }
}

/// Linux reads this much of a file to recognise its format
/// (`BINPRM_BUF_SIZE`); a `#!` line longer than that is truncated.
pub const BINPRM_BUF_SIZE: usize = 256;

fn spacetab(c: u8) -> bool {
    c == b' ' || c == b'\t'
}

/// First index in `[first, last]` that is not a space/tab.
fn next_non_spacetab(buf: &[u8], first: usize, last: usize) -> Option<usize> {
    (first..=last).find(|&i| !spacetab(buf[i]))
}

/// First index in `[first, last]` that is a space, tab or NUL.
fn next_terminator(buf: &[u8], first: usize, last: usize) -> Option<usize> {
    (first..=last).find(|&i| spacetab(buf[i]) || buf[i] == 0)
}

/// Recognises a `#!` script from the start of a file, with Linux's
/// `binfmt_script` rules: only the first [`BINPRM_BUF_SIZE`] bytes count;
/// the interpreter is the first word after `#!`; the rest of the line,
/// trimmed of spaces and tabs, is one optional argument; a line with no
/// newline in the buffer is accepted only if the interpreter name ends
/// within it. `None` means "not a (valid) script": the caller tries other
/// formats and ends with ENOEXEC, which is what Linux returns for both.
/// Nesting depth (Linux allows 4 levels, then ELOOP) is the caller's.
pub fn is_script(data: &[u8]) -> Option<Script> {
    if data.len() < 2 || data[0] != b'#' || data[1] != b'!' {
        return None;
    }
    // The kernel's buffer: zero-filled past the end of a short file.
    let mut buf = [0u8; BINPRM_BUF_SIZE];
    let n = data.len().min(BINPRM_BUF_SIZE);
    buf[..n].copy_from_slice(&data[..n]);
    let buf_end = BINPRM_BUF_SIZE - 1;

    // The translation below follows fs/binfmt_script.c line by line, so
    // its corner cases (truncation, NULs, empty names) match Linux.
    let mut i_end = match buf.iter().position(|&c| c == b'\n') {
        Some(i) => i,
        None => {
            let i = next_non_spacetab(&buf, 2, buf_end)?;
            // No later terminator: the interpreter path was truncated.
            next_terminator(&buf, i, buf_end)?;
            buf_end
        }
    };
    // buf[0..2] is "#!", so this stops at index 2 at the latest.
    while spacetab(buf[i_end - 1]) {
        i_end -= 1;
    }
    let i_name = next_non_spacetab(&buf, 2, i_end)?;
    if i_name == i_end {
        return None;
    }
    let i_sep = next_terminator(&buf, i_name, i_end);
    let i_arg = match i_sep {
        Some(s) if buf[s] != 0 => next_non_spacetab(&buf, s, i_end),
        _ => None,
    };
    buf[i_end] = 0;
    if let Some(s) = i_sep {
        buf[s] = 0;
    }
    let cstr = |from: usize| {
        let len = buf[from..].iter().position(|&c| c == 0).unwrap_or(0);
        buf[from..from + len].to_vec()
    };
    Some(Script {
        interpreter: cstr(i_name),
        arg: i_arg.map(cstr),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;
    use proptest::prelude::*;

    /// Builds a small ELF64 with the given program headers
    /// `(type, flags, offset, vaddr, filesz, memsz)`, headers at offset 64,
    /// padded to `file_len` bytes.
    fn build(
        e_type: u16,
        entry: u64,
        phdrs: &[(u32, u32, u64, u64, u64, u64)],
        file_len: usize,
    ) -> Vec<u8> {
        let mut d = vec![0u8; file_len.max(EHDR_SIZE + phdrs.len() * PHDR_SIZE)];
        d[0..4].copy_from_slice(b"\x7fELF");
        d[4] = ELFCLASS64;
        d[5] = ELFDATA2LSB;
        d[6] = EV_CURRENT;
        d[16..18].copy_from_slice(&e_type.to_le_bytes());
        d[18..20].copy_from_slice(&EM_X86_64.to_le_bytes());
        d[20..24].copy_from_slice(&1u32.to_le_bytes());
        d[24..32].copy_from_slice(&entry.to_le_bytes());
        d[32..40].copy_from_slice(&64u64.to_le_bytes());
        d[52..54].copy_from_slice(&64u16.to_le_bytes());
        d[54..56].copy_from_slice(&(PHDR_SIZE as u16).to_le_bytes());
        d[56..58].copy_from_slice(&(phdrs.len() as u16).to_le_bytes());
        for (i, &(t, f, off, va, fsz, msz)) in phdrs.iter().enumerate() {
            let o = EHDR_SIZE + i * PHDR_SIZE;
            d[o..o + 4].copy_from_slice(&t.to_le_bytes());
            d[o + 4..o + 8].copy_from_slice(&f.to_le_bytes());
            d[o + 8..o + 16].copy_from_slice(&off.to_le_bytes());
            d[o + 16..o + 24].copy_from_slice(&va.to_le_bytes());
            d[o + 24..o + 32].copy_from_slice(&va.to_le_bytes());
            d[o + 32..o + 40].copy_from_slice(&fsz.to_le_bytes());
            d[o + 40..o + 48].copy_from_slice(&msz.to_le_bytes());
            d[o + 48..o + 56].copy_from_slice(&PAGE_SIZE.to_le_bytes());
        }
        d
    }

    /// A static-pie-shaped ET_DYN: headers in the first (R) segment, code
    /// (RX), data+bss (RW), an executable-stack marker, and an interpreter.
    fn small_pie() -> Vec<u8> {
        let mut d = build(
            ET_DYN,
            0x1100,
            &[
                (PT_PHDR, PF_R, 64, 64, 5 * 56, 5 * 56),
                (PT_LOAD, PF_R, 0, 0, 0x400, 0x400),
                (PT_LOAD, PF_R | PF_X, 0x1000, 0x1000, 0x200, 0x200),
                (PT_LOAD, PF_R | PF_W, 0x1200, 0x2200, 0x100, 0x3000),
                (PT_INTERP, PF_R, 0x380, 0x380, 6, 6),
            ],
            0x1300,
        );
        d[0x380..0x386].copy_from_slice(b"/ld.s\0");
        d
    }

    #[test]
    fn headers_alone_parse_against_the_file_length() {
        let full = small_pie();
        let head = &full[..0x400];
        // The whole-file parser sees segments past the end of `head`...
        assert_eq!(parse(head).err(), Some(Errno::ENOEXEC));
        // ...the header parser checks them against the real length.
        let img = parse_headers(head, full.len() as u64).unwrap();
        assert_eq!(img.segments, parse(&full).unwrap().segments);
        // A length shorter than the segments still fails, as does a head
        // longer than the file it claims to start.
        assert!(parse_headers(head, 0x1200).is_err());
        assert!(parse_headers(&full, 16).is_err());
    }

    #[test]
    fn parses_small_pie_and_biases_it() {
        let img = parse(&small_pie()).unwrap();
        assert_eq!(img.kind, ElfKind::Dyn);
        assert_eq!(img.entry, 0x1100);
        assert_eq!(img.segments.len(), 3);
        assert_eq!(img.phdr_vaddr, Some(64));
        assert_eq!((img.phnum, img.phent), (5, 56));
        assert_eq!(img.interp.as_deref(), Some(&b"/ld.s"[..]));
        let s = img.segments[2];
        assert!(s.readable && s.writable && !s.executable);
        assert_eq!(s.page_range(), (0x2000, 0x6000));
        assert_eq!(img.load_bounds(), (0, 0x6000));
        assert!(!img.executable_stack);

        let b = img.clone().with_bias(0x5555_5555_4000).unwrap();
        assert_eq!(b.entry, 0x5555_5555_5100);
        assert_eq!(b.phdr_vaddr, Some(0x5555_5555_4040));
        assert_eq!(b.segments[2].vaddr, 0x5555_5555_6200);
        assert_eq!(b.brk_start(), 0x5555_5555_a000);
        assert_eq!(img.clone().with_bias(0x123).unwrap_err(), Errno::EINVAL);
        assert_eq!(img.with_bias(USER_TOP).unwrap_err(), Errno::ENOMEM);
    }

    #[test]
    fn rejects_bad_headers() {
        let good = small_pie();
        let mutate = |f: &dyn Fn(&mut Vec<u8>)| {
            let mut d = good.clone();
            f(&mut d);
            parse(&d)
        };
        assert_eq!(mutate(&|d| d[0] = 0), Err(Errno::ENOEXEC));
        assert_eq!(mutate(&|d| d[4] = 1), Err(Errno::ENOEXEC)); // 32-bit
        assert_eq!(mutate(&|d| d[18] = 3), Err(Errno::ENOEXEC)); // EM_386
        assert_eq!(mutate(&|d| d[16] = 1), Err(Errno::ENOEXEC)); // ET_REL
        assert_eq!(mutate(&|d| d[54] = 32), Err(Errno::ENOEXEC)); // phentsize
        assert_eq!(mutate(&|d| d.truncate(0x1200)), Err(Errno::ENOEXEC)); // data past EOF
        assert_eq!(parse(&good[..63]), Err(Errno::ENOEXEC));
        assert_eq!(parse(b"#!/bin/sh\n"), Err(Errno::ENOEXEC));
        // Overlapping segments.
        let d = build(
            ET_EXEC,
            0x401000,
            &[
                (PT_LOAD, PF_R, 0, 0x400000, 0x100, 0x2000),
                (PT_LOAD, PF_R, 0, 0x401000, 0x100, 0x100),
            ],
            0x200,
        );
        assert_eq!(parse(&d), Err(Errno::ENOEXEC));
        // Segment reaching past user space.
        let d = build(
            ET_EXEC,
            0,
            &[(PT_LOAD, PF_R, 0, USER_TOP - 0x1000, 0x100, 0x2000)],
            0x200,
        );
        assert_eq!(parse(&d), Err(Errno::ENOEXEC));
        // File offset and vaddr disagree within a page.
        let d = build(
            ET_EXEC,
            0,
            &[(PT_LOAD, PF_R, 8, 0x400000, 0x100, 0x100)],
            0x200,
        );
        assert_eq!(parse(&d), Err(Errno::ENOEXEC));
        // No PT_LOAD at all.
        let d = build(
            ET_EXEC,
            0,
            &[(PT_GNU_STACK, PF_R | PF_W | PF_X, 0, 0, 0, 0)],
            0x200,
        );
        assert_eq!(parse(&d), Err(Errno::ENOEXEC));
        // Unterminated interpreter.
        assert_eq!(mutate(&|d| d[0x385] = b'x'), Err(Errno::ENOEXEC));
    }

    #[test]
    fn exec_stack_flag() {
        let d = build(
            ET_EXEC,
            0x400000,
            &[
                (PT_LOAD, PF_R | PF_X, 0, 0x400000, 0x100, 0x100),
                (PT_GNU_STACK, PF_R | PF_W | PF_X, 0, 0, 0, 0),
            ],
            0x200,
        );
        let img = parse(&d).unwrap();
        assert!(img.executable_stack);
        assert_eq!(img.phdr_vaddr, Some(0x400040));
        assert_eq!(img.clone().with_bias(0x1000).unwrap_err(), Errno::EINVAL);
        assert_eq!(img.clone().with_bias(0).unwrap(), img);
    }

    extern crate std;

    /// The host's static busybox, when there is one: a real-world ELF.
    fn busybox() -> Option<&'static [u8]> {
        static BB: std::sync::OnceLock<Option<Vec<u8>>> = std::sync::OnceLock::new();
        BB.get_or_init(|| {
            std::fs::read("/bin/busybox")
                .ok()
                .filter(|d| d.starts_with(b"\x7fELF"))
        })
        .as_deref()
    }

    #[test]
    fn parses_host_busybox() {
        let Some(d) = busybox() else { return };
        let img = parse(d).unwrap();
        assert!(img.phdr_vaddr.is_some());
        assert!(img.segments.iter().any(|s| s.executable));
        let (lo, hi) = img.load_bounds();
        assert!(lo <= img.entry && img.entry < hi);
        assert!(img.interp.is_none(), "busybox-static has no interpreter");
    }

    #[test]
    fn scripts_follow_linux() {
        let s = |x: &[u8]| is_script(x).map(|s| (s.interpreter, s.arg));
        let v = |x: &[u8]| x.to_vec();
        assert_eq!(s(b"#!/bin/sh\necho"), Some((v(b"/bin/sh"), None)));
        assert_eq!(
            s(b"#! /bin/sh -e  \n"),
            Some((v(b"/bin/sh"), Some(v(b"-e"))))
        );
        assert_eq!(
            s(b"#!/usr/bin/env  python3 -u x\t\n"),
            Some((v(b"/usr/bin/env"), Some(v(b"python3 -u x"))))
        );
        assert_eq!(s(b"#!/bin/sh"), Some((v(b"/bin/sh"), None)));
        assert_eq!(
            s(b"#!\t/bin/sh\t\r\n"),
            Some((v(b"/bin/sh"), Some(v(b"\r"))))
        );
        assert_eq!(s(b"#!\n/bin/sh"), None);
        assert_eq!(s(b"#!   \n"), None);
        assert_eq!(s(b"#"), None);
        assert_eq!(s(b"\x7fELF"), None);
        // A line longer than the buffer: fine if the name ends inside it...
        let mut long = b"#!/bin/sh ".to_vec();
        long.extend(core::iter::repeat_n(b'a', 400));
        let (name, arg) = s(&long).unwrap();
        assert_eq!(name, b"/bin/sh");
        assert_eq!(arg.unwrap().len(), BINPRM_BUF_SIZE - 1 - 10);
        // ...but a truncated interpreter path is refused.
        let mut long = b"#!/".to_vec();
        long.extend(core::iter::repeat_n(b'a', 400));
        assert_eq!(s(&long), None);

        let sc = is_script(b"#!/bin/sh -x\n").unwrap();
        assert_eq!(
            sc.argv(b"/t.sh", &[b"t.sh", b"1"]),
            vec![v(b"/bin/sh"), v(b"-x"), v(b"/t.sh"), v(b"1")]
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn random_bytes_never_panic(d in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = parse(&d);
            let _ = is_script(&d);
        }

        #[test]
        fn elf_prefix_never_panics(tail in proptest::collection::vec(any::<u8>(), 0..1024)) {
            let mut d = small_pie()[..20].to_vec();
            d.extend(tail);
            let _ = parse(&d);
        }

        /// Mutating header and program-header bytes of real ELFs: every
        /// result is either ENOEXEC or a plan that respects the invariants.
        #[test]
        fn mutated_elves_never_panic(
            which in any::<bool>(),
            muts in proptest::collection::vec((0usize..1024, any::<u8>()), 1..12),
            cut in proptest::option::of(0usize..0x2000),
        ) {
            let mut d = match (which, busybox()) {
                (true, Some(b)) => b.to_vec(),
                _ => small_pie(),
            };
            for (at, val) in muts {
                let at = at % d.len();
                d[at] = val;
            }
            if let Some(c) = cut {
                d.truncate(c);
            }
            if let Ok(img) = parse(&d) {
                check_invariants(&img, d.len());
                let _ = img.with_bias(0x5555_5555_4000);
            }
        }

        #[test]
        fn script_lines_never_panic(
            d in proptest::collection::vec(proptest::sample::select(&b" \t\n\0a/"[..]), 0..300)
        ) {
            let mut x = b"#!".to_vec();
            x.extend(d);
            if let Some(s) = is_script(&x) {
                prop_assert!(!s.interpreter.contains(&0));
                prop_assert!(s.interpreter.len() < BINPRM_BUF_SIZE);
                if let Some(a) = s.arg {
                    // A NUL in the line cuts it (Linux then passes what is
                    // left, even an empty or space-ended argument).
                    prop_assert!(!a.contains(&0) && !a.contains(&b'\n'));
                    prop_assert!(a.first().is_none_or(|&c| !spacetab(c)));
                }
            }
        }
    }

    fn check_invariants(img: &ElfImage, len: usize) {
        assert!(!img.segments.is_empty());
        let mut prev_end = 0;
        for s in &img.segments {
            assert!(s.filesz <= s.memsz && s.memsz > 0);
            assert!(s.file_offset + s.filesz <= len as u64);
            assert!(s.vaddr >= prev_end);
            prev_end = s.vaddr + s.memsz;
            assert!(prev_end <= USER_TOP);
            assert_eq!(s.vaddr.wrapping_sub(s.file_offset) % PAGE_SIZE, 0);
        }
    }
}
