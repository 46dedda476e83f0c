//! What crosses the wire when a process moves: its registers, FPU state
//! and TLS bases ([`Cpu`]), its mappings, and its pages — all of them at a
//! move (stop-and-copy), then only the pages that changed since the last
//! sync ([`Mirror`]).
//!
//! Encoding: little-endian fields one after the other, read back with a
//! cursor ([`Reader`]) whose every read is checked: a short or malformed
//! message is an error, never a panic. A page record is its address with
//! the kind in the low 12 bits (page addresses have them clear):
//! [`P_DATA`] (4096 bytes follow), [`P_ZERO`], [`P_ABSENT`] (unmapped on
//! the other side), [`P_VDSO`] (the receiver's own vDSO frame, index in
//! bits 4..12).
//!
//! Which pages changed: each side keeps a 64-bit hash of every page it
//! sent or received ([`Mirror`]); at a sync it hashes the present pages
//! of its writable mappings (and any page it has no hash for) and sends
//! those whose hash differs. The hash is a chain of bijections of the
//! state (xor a word, multiply by an odd constant, rotate), so a page
//! differing from the last sync in one word always hashes differently.

use alloc::collections::BTreeMap;
use alloc::vec::Vec;
use hal::idt::TrapFrame;
use mm::vma::{OnFork, Prot, Vma, VmaKind, VmaMap};

use crate::mm::{Mm, PAGE};

pub const P_DATA: u64 = 0;
pub const P_ZERO: u64 = 1;
pub const P_ABSENT: u64 = 2;
pub const P_VDSO: u64 = 3;

/// A malformed message (the connection is dropped and counted).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Malformed;

pub struct Writer(pub Vec<u8>);

impl Writer {
    pub fn new() -> Writer {
        Writer(Vec::new())
    }
    pub fn u8(&mut self, v: u8) {
        self.0.push(v);
    }
    pub fn u32(&mut self, v: u32) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    pub fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    pub fn bytes(&mut self, b: &[u8]) {
        self.u32(b.len() as u32);
        self.0.extend_from_slice(b);
    }
}

pub struct Reader<'a> {
    b: &'a [u8],
}

impl<'a> Reader<'a> {
    pub fn new(b: &'a [u8]) -> Reader<'a> {
        Reader { b }
    }
    pub fn take(&mut self, n: usize) -> Result<&'a [u8], Malformed> {
        if self.b.len() < n {
            return Err(Malformed);
        }
        let (h, t) = self.b.split_at(n);
        self.b = t;
        Ok(h)
    }
    pub fn u8(&mut self) -> Result<u8, Malformed> {
        Ok(self.take(1)?[0])
    }
    pub fn u32(&mut self) -> Result<u32, Malformed> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    pub fn u64(&mut self) -> Result<u64, Malformed> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }
    pub fn bytes(&mut self, max: usize) -> Result<&'a [u8], Malformed> {
        let n = self.u32()? as usize;
        if n > max {
            return Err(Malformed);
        }
        self.take(n)
    }
}

/// The user registers, FPU state and TLS bases of a stopped process.
pub struct Cpu {
    /// r15..rax, vector, error_code, rip, rflags, rsp (cs and ss are the
    /// receiver's user selectors).
    pub regs: [u64; 20],
    pub fs_base: u64,
    pub gs_base: u64,
    pub fpu: Vec<u8>,
}

/// RFLAGS bits a user frame may carry (arithmetic, TF, DF, AC, ID), IF
/// set: what arrives from the wire never sets IOPL or anything else.
const USER_FLAGS: u64 = 0x0025_0dd5;

impl Cpu {
    pub fn of(f: &TrapFrame, fs_base: u64, gs_base: u64, fpu: &[u8]) -> Cpu {
        Cpu {
            regs: [
                f.r15,
                f.r14,
                f.r13,
                f.r12,
                f.r11,
                f.r10,
                f.r9,
                f.r8,
                f.rbp,
                f.rdi,
                f.rsi,
                f.rdx,
                f.rcx,
                f.rbx,
                f.rax,
                f.vector,
                f.error_code,
                f.rip,
                f.rflags,
                f.rsp,
            ],
            fs_base,
            gs_base,
            fpu: fpu.to_vec(),
        }
    }

    /// Loads the registers into a user frame (its cs and ss stay).
    pub fn load_into(&self, f: &mut TrapFrame) {
        let r = &self.regs;
        f.r15 = r[0];
        f.r14 = r[1];
        f.r13 = r[2];
        f.r12 = r[3];
        f.r11 = r[4];
        f.r10 = r[5];
        f.r9 = r[6];
        f.r8 = r[7];
        f.rbp = r[8];
        f.rdi = r[9];
        f.rsi = r[10];
        f.rdx = r[11];
        f.rcx = r[12];
        f.rbx = r[13];
        f.rax = r[14];
        f.vector = r[15];
        f.error_code = r[16];
        f.rip = r[17];
        f.rflags = (r[18] & USER_FLAGS) | 0x202;
        f.rsp = r[19];
    }

    pub fn encode(&self, w: &mut Writer) {
        for r in self.regs {
            w.u64(r);
        }
        w.u64(self.fs_base);
        w.u64(self.gs_base);
        w.bytes(&self.fpu);
    }

    pub fn decode(r: &mut Reader) -> Result<Cpu, Malformed> {
        let mut regs = [0u64; 20];
        for x in regs.iter_mut() {
            *x = r.u64()?;
        }
        Ok(Cpu {
            regs,
            fs_base: r.u64()?,
            gs_base: r.u64()?,
            fpu: r.bytes(hal::percpu::FPU_AREA_SIZE)?.to_vec(),
        })
    }
}

fn kind_code(k: VmaKind) -> u8 {
    match k {
        VmaKind::Stack => 1,
        VmaKind::Heap => 2,
        _ => 0,
    }
}

/// The mappings of `m` (what the other side mirrors: ranges, rights and
/// purpose; every one is private anonymous memory there).
pub fn encode_vmas(m: &Mm, w: &mut Writer) {
    w.u32(m.vmas.len() as u32);
    for v in m.vmas.iter() {
        w.u64(v.start);
        w.u64(v.end);
        w.u8(v.prot.bits());
        w.u8(kind_code(v.kind));
    }
    w.u64(m.brk_start);
    w.u64(m.brk);
}

/// Most mappings a message may carry (Linux's default max_map_count).
const MAX_VMAS: u32 = 65_530;

pub fn decode_vmas(r: &mut Reader) -> Result<(VmaMap<crate::mm::Backing>, u64, u64), Malformed> {
    let n = r.u32()?;
    if n > MAX_VMAS {
        return Err(Malformed);
    }
    let mut map = VmaMap::new();
    for _ in 0..n {
        let (start, end) = (r.u64()?, r.u64()?);
        let prot = Prot::from_linux(u64::from(r.u8()?)).map_err(|_| Malformed)?;
        let kind = match r.u8()? {
            1 => VmaKind::Stack,
            2 => VmaKind::Heap,
            _ => VmaKind::Anon,
        };
        let ok = start < end
            && start % PAGE == 0
            && end % PAGE == 0
            && end <= hal::probe::USER_TOP
            && start >= PAGE;
        if !ok {
            return Err(Malformed);
        }
        let vma = Vma {
            start,
            end,
            prot,
            shared: false,
            fork: OnFork::Copy,
            kind,
            backing: None,
        };
        // Overlapping ranges replace each other: still a valid map.
        map.insert(vma).map_err(|_| Malformed)?;
    }
    Ok((map, r.u64()?, r.u64()?))
}

/// Replaces the mappings of `m` with `map` (all private anonymous): pages
/// no longer covered are unmapped, the others take their new rights.
pub fn mirror_vmas(m: &mut Mm, map: VmaMap<crate::mm::Backing>) {
    let old: Vec<(u64, u64)> = m.vmas.iter().map(|v| (v.start, v.end)).collect();
    let new: Vec<(u64, u64, Prot)> = map.iter().map(|v| (v.start, v.end, v.prot)).collect();
    m.vmas = map;
    for (s, e) in old {
        // The parts of [s, e) no new mapping covers.
        let mut at = s;
        for &(ns, ne, _) in new.iter().filter(|&&(ns, ne, _)| ns < e && ne > s) {
            if ns > at {
                m.unmap_pages(at, ns.min(e));
            }
            at = at.max(ne);
        }
        if at < e {
            m.unmap_pages(at, e);
        }
    }
    for (s, e, prot) in new {
        m.reprotect(s, e, prot, false);
    }
}

/// The hash of a frame's contents (see the module doc).
fn hash_frame(pa: u64) -> u64 {
    let mut h: u64 = 0x9e37_79b9_7f4a_7c15;
    for w in hal::addrspace::frame_words_u64(pa).iter() {
        let v = w.load(core::sync::atomic::Ordering::Relaxed);
        h = (h ^ v).wrapping_mul(0xff51_afd7_ed55_8ccd).rotate_left(29);
    }
    h
}

fn is_zero(pa: u64) -> bool {
    hal::addrspace::frame_words_u64(pa)
        .iter()
        .all(|w| w.load(core::sync::atomic::Ordering::Relaxed) == 0)
}

/// Marks a vDSO page in the table (its frame is the machine's own).
const VDSO_HASH: u64 = 0x7664_736f;

/// What one side last sent or received of each page (see the module doc).
#[derive(Default)]
pub struct Mirror {
    hashes: BTreeMap<u64, u64>,
    /// A guest's own vvar frame (its home's monotonic time), mapped
    /// instead of this machine's.
    pub vvar: Option<u64>,
}

impl Mirror {
    /// Appends a record for every page of `m` that changed since the last
    /// sync (every page the first time), absent ones included, and
    /// remembers them as synced. Returns the number of records.
    pub fn diff(&mut self, m: &Mm, w: &mut Writer) -> u32 {
        let mut next = BTreeMap::new();
        let mut n = 0u32;
        let mut buf = alloc::vec![0u8; PAGE as usize];
        for v in m.vmas.iter() {
            let writable = v.prot.contains(Prot::WRITE);
            m.for_each_present(v.start, v.end, &mut |va, pa, _| {
                let old = self.hashes.get(&va).copied();
                if let (false, Some(h)) = (writable, old) {
                    // Nothing writes a page its mapping does not let write.
                    next.insert(va, h);
                    return;
                }
                if let Some(i) = crate::vdso::frame_index(pa) {
                    next.insert(va, VDSO_HASH);
                    if old != Some(VDSO_HASH) {
                        w.u64(va | P_VDSO | ((i as u64 & 0xff) << 4));
                        n += 1;
                    }
                    return;
                }
                let h = hash_frame(pa);
                next.insert(va, h);
                if old == Some(h) {
                    return;
                }
                n += 1;
                if is_zero(pa) {
                    w.u64(va | P_ZERO);
                } else {
                    w.u64(va | P_DATA);
                    hal::addrspace::read_frame(pa, 0, &mut buf);
                    w.0.extend_from_slice(&buf);
                }
            });
        }
        for &va in self.hashes.keys() {
            if !next.contains_key(&va) {
                w.u64(va | P_ABSENT);
                n += 1;
            }
        }
        self.hashes = next;
        n
    }

    /// Applies `n` page records to `m`, remembering them as synced.
    pub fn apply(&mut self, m: &mut Mm, r: &mut Reader, n: u32) -> Result<(), Malformed> {
        for _ in 0..n {
            let word = r.u64()?;
            let (va, kind) = (word & !(PAGE - 1), word & (PAGE - 1));
            if va >= hal::probe::USER_TOP {
                return Err(Malformed);
            }
            match kind & 0xf {
                P_DATA => {
                    let data = r.take(PAGE as usize)?;
                    m.put_page(va, Some(data)).map_err(|_| Malformed)?;
                    self.hashes.insert(va, hash_of_bytes(data));
                }
                P_ZERO => {
                    m.put_page(va, None).map_err(|_| Malformed)?;
                    self.hashes.insert(va, hash_of_bytes(&[0u8; PAGE as usize]));
                }
                P_ABSENT => {
                    m.unmap_pages(va, va + PAGE);
                    self.hashes.remove(&va);
                }
                P_VDSO => {
                    let i = (kind >> 4) as usize;
                    let own = self.vvar.filter(|_| i == 0);
                    let pa = own.or_else(|| crate::vdso::frame(i)).ok_or(Malformed)?;
                    let prot = m.vmas.find(va).ok_or(Malformed)?.prot;
                    m.unmap_pages(va, va + PAGE);
                    m.map_shared_frame(va, pa, prot).map_err(|_| Malformed)?;
                    self.hashes.insert(va, VDSO_HASH);
                }
                _ => return Err(Malformed),
            }
        }
        Ok(())
    }
}

/// [`hash_frame`] over bytes (a page received).
fn hash_of_bytes(b: &[u8]) -> u64 {
    let mut h: u64 = 0x9e37_79b9_7f4a_7c15;
    for c in b.chunks_exact(8) {
        let mut a = [0u8; 8];
        a.copy_from_slice(c);
        h = (h ^ u64::from_le_bytes(a))
            .wrapping_mul(0xff51_afd7_ed55_8ccd)
            .rotate_left(29);
    }
    h
}

/// Faults in every absent page of the private file mappings of `m`, so
/// that its pages are all present and can be copied (the other machine
/// has no file behind them). Mappings without access are skipped.
pub fn prefault_files(m: &mut Mm) {
    let ranges: Vec<(u64, u64)> = m
        .vmas
        .iter()
        .filter(|v| v.backing.is_some() && !v.shared && v.prot != Prot::NONE)
        .map(|v| (v.start, v.end))
        .collect();
    for (s, e) in ranges {
        let mut va = s;
        while va < e {
            if m.frame_at(va).is_none() && m.handle_fault(va, false, false).is_err() {
                break; // past the file's end: SIGBUS there, at home too
            }
            va += PAGE;
        }
    }
}

/// Why an address space cannot be mirrored on another machine: a shared
/// mapping (its frames are other processes' or a file's own memory).
pub fn mirrorable(m: &Mm) -> bool {
    !m.vmas.iter().any(|v| v.shared)
}
