//! A check on the kernel binary itself: which FPU instructions compiled
//! kernel code contains. Entries from user mode save only the user's XMM
//! registers (crates/hal/src/fpu.rs), which is correct only while the
//! kernel never executes x87, MMX or VEX (AVX) instructions, nor SSE
//! floating-point arithmetic, conversions or comparisons (which set
//! MXCSR's exception flags), and never loads MXCSR, apart from the FPU
//! save/restore code that handles the user state. A new dependency or
//! compiler change that brings any of them in fails this check instead of
//! corrupting user FPU state.

use std::process::Command;

use crate::{artifacts, deps};

/// binutils' objdump, the disassembler.
const BINUTILS: deps::Package = deps::Package {
    name: "binutils",
    file: "/usr/bin/objdump",
};

/// Instructions only the FPU state code may contain: the entry paths'
/// save and restore and the completing sync, in the functions named by
/// [`STATE_CODE`].
const STATE_OPS: &[&str] = &[
    "fxsave64",
    "fxrstor64",
    "xsave64",
    "xrstor64",
    "ldmxcsr",
    "stmxcsr",
];

/// x87 mnemonics start with `f` (fld, fstp, fadd, fnstcw, ...); the ones
/// here are the FXSAVE family, checked separately.
/// Symbols (substrings of the demangled names objdump prints) whose code
/// may save, restore or load FPU state: trap_entry.S's labels, the syscall
/// entry, hal::fpu::sync_current.
const STATE_CODE: &[&str] = &[
    "trap_",
    "syscall_entry",
    "syscall_iret",
    "fpu::sync_current",
];

fn is_x87(m: &str) -> bool {
    m.starts_with('f') && !m.starts_with("fxsave") && !m.starts_with("fxrstor")
}

/// SSE instructions that may set an MXCSR exception flag: floating-point
/// arithmetic, square roots and reciprocals, rounding, min/max,
/// comparisons and conversions. Moves, shuffles, logic (`xorps`, `andpd`)
/// and all integer SSE (`paddq`, `pcmpeqb`) leave MXCSR alone.
fn touches_mxcsr(m: &str) -> bool {
    let float = ["ss", "sd", "ps", "pd"].iter().any(|t| m.ends_with(t));
    let ops = [
        "add", "sub", "mul", "div", "sqrt", "rcp", "rsqrt", "min", "max", "round", "cmp", "comi",
        "ucomi", "hadd", "hsub", "dp",
    ];
    m.starts_with("cvt") || (float && ops.iter().any(|o| m.starts_with(o)))
}

/// The kernel's disassembly (AT&T, demangled names).
fn disassemble() -> Result<String, String> {
    deps::ensure(&[&BINUTILS])?;
    let kernel = artifacts::build_kernel()?;
    let out = Command::new(BINUTILS.file)
        .args(["-d", "-C", "--no-show-raw-insn", "-M", "att"])
        .arg(&kernel)
        .output()
        .map_err(|e| format!("objdump: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "objdump failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

pub fn kernel_fpu_instructions() -> Result<(), String> {
    let text = disassemble()?;
    leaf_syscalls_without_sse(&text)?;
    let mut bad = Vec::new();
    let mut state_ops = 0;
    let mut instructions = 0;
    let mut symbol = "";
    for line in text.lines() {
        // "ffffffff80200000 <symbol>:" starts a symbol's code.
        if let Some(name) = line.strip_suffix(">:").and_then(|l| l.split_once(" <")) {
            symbol = name.1;
            continue;
        }
        // "ffffffff80200000:\tmnemonic operands"
        let Some((_, insn)) = line.split_once(":\t") else {
            continue;
        };
        instructions += 1;
        let mut parts = insn.split_whitespace();
        let Some(mut m) = parts.next() else { continue };
        if matches!(
            m,
            "lock" | "rep" | "repz" | "repnz" | "rex" | "rex.W" | "data16" | "cs" | "ds"
        ) {
            m = parts.next().unwrap_or("");
        }
        // VEX/EVEX vector instructions (not vmcall, verr, ...).
        let vex = m.starts_with('v') && (insn.contains("%xmm") || m.starts_with("vzero"));
        let mmx = insn.contains("%mm") || m == "emms";
        if STATE_OPS.contains(&m) {
            if STATE_CODE.iter().any(|s| symbol.contains(s)) {
                state_ops += 1;
            } else {
                bad.push(format!("{} (in {symbol})", line.trim()));
            }
        } else if is_x87(m)
            || vex
            || mmx
            || touches_mxcsr(m)
            || insn.contains("%ymm")
            || insn.contains("%zmm")
        {
            bad.push(format!("{} (in {symbol})", line.trim()));
        }
    }
    if instructions < 10_000 {
        return Err(format!("objdump gave only {instructions} instructions"));
    }
    if !bad.is_empty() {
        bad.truncate(20);
        return Err(format!(
            "kernel code uses FPU state beyond XMM registers (the syscall entry \
             would not preserve it for the user):\n{}",
            bad.join("\n")
        ));
    }
    if state_ops == 0 {
        return Err("no FPU save/restore code found: did the symbols change?".into());
    }
    println!(
        "    {instructions} instructions: no x87, MMX, AVX or SSE float arithmetic; {state_ops} FPU state instructions"
    );
    Ok(())
}

/// hal's light syscall path (the `syscall_leaf` code of its syscall
/// entry), which runs with the user's XMM registers live.
const LEAF_PATH: &str = "syscall_leaf";

/// The light syscall path runs with the user's XMM registers live (it
/// saves none), so it may neither name an XMM, YMM or ZMM register nor
/// call anything (compiled code could use them).
fn leaf_syscalls_without_sse(text: &str) -> Result<(), String> {
    let bodies = functions(text);
    let body = bodies
        .get(LEAF_PATH)
        .ok_or(format!("no {LEAF_PATH} in the kernel: did it move?"))?;
    let bad: Vec<&String> = body
        .iter()
        .filter(|i| {
            i.contains("%xmm")
                || i.contains("%ymm")
                || i.contains("%zmm")
                || i.split_whitespace()
                    .next()
                    .unwrap_or("")
                    .starts_with("call")
        })
        .collect();
    if !bad.is_empty() {
        return Err(format!(
            "the leaf syscall path (run with the user's XMM registers live) \
             calls out or uses SSE registers: {bad:?}"
        ));
    }
    println!(
        "    leaf syscall path: {} instructions, no call, no XMM register",
        body.len()
    );
    Ok(())
}

/// Each function's instructions, by its demangled name (without the hash
/// objdump may print).
fn functions(text: &str) -> std::collections::BTreeMap<String, Vec<String>> {
    let mut map = std::collections::BTreeMap::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        if let Some(name) = line.strip_suffix(">:").and_then(|l| l.split_once(" <")) {
            current = Some(name.1.to_string());
            map.insert(name.1.to_string(), Vec::new());
            continue;
        }
        if let (Some(c), Some((_, insn))) = (&current, line.split_once(":\t")) {
            if let Some(v) = map.get_mut(c) {
                v.push(insn.to_string());
            }
        }
    }
    map
}

#[cfg(test)]
mod tests {
    use super::{is_x87, touches_mxcsr};

    #[test]
    fn classifies_fpu_instructions() {
        for m in [
            "addsd",
            "mulps",
            "divss",
            "sqrtpd",
            "cvtsi2sd",
            "cvttsd2si",
            "ucomisd",
            "cmpltps",
            "minsd",
            "roundps",
        ] {
            assert!(touches_mxcsr(m), "{m}");
        }
        for m in [
            "movsd", "movups", "xorps", "andpd", "shufpd", "paddq", "pcmpeqb", "pminsd",
            "movmskpd", "divq", "cmpsl", "subq",
        ] {
            assert!(!touches_mxcsr(m), "{m}");
        }
        for m in ["fld", "fstp", "fnstcw", "fldcw", "fninit"] {
            assert!(is_x87(m), "{m}");
        }
        for m in ["fxsave64", "fxrstor64", "mov"] {
            assert!(!is_x87(m), "{m}");
        }
    }
}
