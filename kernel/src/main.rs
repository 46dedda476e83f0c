//! The RSE OS kernel binary: boot order and wiring.
//!
//! Boot order (each stage logs one line with µs since entry):
//! 1. `hal` entry (PVH or Multiboot2) → long mode → [`kmain`]
//! 2. serial console, command line
//! 3. GDT/TSS with IST stacks, IDT and the trap handler
//! 4. kernel page tables (direct map of RAM) and the heap
//! 5. per-torus frame pools
//! 6. local APIC + I/O APIC, legacy PIC masked; TSC and APIC timer
//!    calibrated against the PIT; periodic timer; COM1 receive interrupt
//! 7. application processors started (INIT-SIPI-SIPI); each becomes a
//!    torus: syscalls, its own timer, its idle loop ([`ap_main`])
//! 8. ready (then self tests, or userland once it exists)
//! 9. the virtio devices (`drivers::virtio`): the NIC, if any (virtio-net;
//!    `net`), the disks (virtio-blk; `block`), then the initramfs and init
#![no_std]
#![no_main]

extern crate alloc;

mod block;
mod clock;
mod cluster;
mod cmdline;
mod console;
mod drivers;
mod exec;
mod exec_file;
mod frames;
mod fs;
mod init;
mod inject;
mod io_uring;
mod log;
mod mm;
mod net;
mod objects;
mod proc;
mod random;
mod selftest;
mod syscall;
mod trap;
mod uaccess;
mod vdso;

hal::kernel_entry!(kmain);

fn kmain(info: &'static hal::boot::BootInfo) -> ! {
    hal::serial::init();
    let cmd = info.cmdline();
    log::set_console(cmdline::get(cmd, "quiet").is_none());
    hal::pic::disable();

    hal::gdt::init(0);
    hal::percpu::init(0);
    hal::fpu::init_cpu(true);
    trap::init();
    hal::syscall::init(syscall::handle);
    hal::syscall::set_leaf(syscall::leaf::LEAVES);
    hal::context::set_first_run_hook(proc::fork::first_run);

    let free = hal::paging::init(info);
    // One torus per CPU (the MADT's count), and one frame pool per torus;
    // `tori=N` asks for N tori (CPUs host the extra ones in turn).
    let tori = cmdline::get(cmd, "tori")
        .and_then(|v| v.parse().ok())
        .unwrap_or(info.apic_ids().len())
        .clamp(1, proc::torus::MAX_TORI);
    frames::init(&free, tori);
    mm::refcount::init(info.ram_end());

    hal::apic::init(&mut || frames::alloc_on(0));
    let tsc_khz = cmdline::get(cmd, "tsc_early_khz").and_then(|v| v.parse().ok());
    let (tsc_hz, tsc_source) = hal::time::calibrate(hal::time::ROUND_MS, info.entry_tsc, tsc_khz);
    clock::init();
    vdso::init();
    // Stages before calibration are logged now, with the clock just set up.
    klog!("boot: entered via {:?}, cmdline \"{cmd}\"", info.protocol);
    klog!("boot: GDT/TSS (IST stacks) and IDT loaded");
    klog!(
        "boot: kernel page tables live, heap {} MiB (grows to {} MiB), NX {}, SMEP {}",
        hal::heap::claimed() >> 20,
        hal::heap::size() >> 20,
        on_off(hal::paging::nx_enabled()),
        on_off(hal::paging::smep_enabled())
    );
    for t in 0..frames::torus_count() {
        let (free_frames, _) = frames::stats(t);
        klog!("boot: torus {t} frame pool {} MiB", free_frames >> 8);
    }
    klog!(
        "boot: TSC {} kHz ({tsc_source:?}), APIC timer calibrated",
        tsc_hz / 1000
    );
    proc::torus::set_online(0, 0);
    start_cpus(info);
    host_extra_tori(tori);
    hal::apic::start_timer(trap::TIMER_VECTOR, trap::TIMER_HZ);
    hal::apic::route_irq(4, trap::COM1_VECTOR, hal::apic::id());
    hal::cpu::enable_interrupts();
    klog!(
        "boot: timer at {} Hz, COM1 receive interrupt on",
        trap::TIMER_HZ
    );
    klog!("RSE OS ready");

    match cmdline::get(cmd, "selftest") {
        Some("crash") => hal::probe::crash(),
        Some("overflow_task") => selftest::overflow_task_stack(),
        Some("overflow_boot") => selftest::overflow_boot_stack(),
        Some(_) => selftest::run_all(),
        None => {}
    }
    inject::init(cmd);
    hal::context::set_stack_check(cmdline::get(cmd, "stackcheck") == Some("1"));
    fs::ext4_pages::init(cmd);
    syscall::errtrace::init(cmd);
    random::seed();
    drivers::virtio::init();
    net::init(cmd);
    cluster::init(cmd);
    block::init(cmd);
    let exec = cmdline::get(cmd, "exec").is_some();
    match fs::init(info.initrd_bytes()) {
        Ok(n) => klog!(
            "boot: initramfs unpacked ({} KiB) into the tmpfs root",
            n / 1024
        ),
        Err(e) => klog!(
            "boot: initramfs unpack failed ({e:?}: corrupt, or larger than the tmpfs limit); \
             the root holds what was unpacked before the failure"
        ),
    }
    fs::tty::init(exec);
    match fs::rootdisk::mount_from_cmdline(cmd) {
        Some(Ok(())) => klog!("boot: root on disk"),
        Some(Err(e)) => klog!("boot: cannot mount the root disk: {e:?}; / stays the tmpfs"),
        None => {}
    }
    // `init=` names the program on a root disk (Linux's rule: `rdinit=`
    // is for the initramfs).
    let init_path = cmdline::get(cmd, "rdinit")
        .or_else(|| cmdline::get(cmd, "init").filter(|_| fs::rootdisk::root().is_some()));
    let program = match init_path {
        Some(path) if !path.is_empty() => init::Program::Path(path),
        _ if exec => init::Program::ShellCommand,
        _ => init::Program::Shell,
    };
    match init::start(&program) {
        Ok(()) => klog!("boot: init started (pid 1: {program})"),
        Err(e) => {
            klog!("boot: cannot start {program}: {e:?}; no userland");
            if exec {
                klog!("init exited: status=127");
                hal::exit::exit_qemu(hal::exit::ExitCode::Failure);
            }
        }
    }
    proc::sched::idle_loop()
}

/// An application processor, once the hal has given it its GDT, IDT, GS
/// and local APIC: it becomes a torus and waits for processes.
fn ap_main(cpu: usize) -> ! {
    hal::syscall::init(syscall::handle);
    hal::apic::start_timer(trap::TIMER_VECTOR, trap::TIMER_HZ);
    proc::torus::set_online(cpu, cpu);
    hal::cpu::enable_interrupts();
    proc::sched::idle_loop()
}

/// With more tori asked for than CPUs came online, the CPUs host the
/// extra ones in turn (torus k on the k-th online CPU modulo their count).
fn host_extra_tori(tori: usize) {
    // hal's view: an AP may not have reached ap_main (and its own torus,
    // the one with its index) yet.
    let cpus: alloc::vec::Vec<usize> = (0..proc::cpu::MAX_CPUS)
        .filter(|&c| proc::cpu::is_online(c))
        .collect();
    let first = cpus.last().map_or(1, |&c| c + 1);
    for (k, t) in (first..tori).enumerate() {
        let host = cpus[k % cpus.len()];
        proc::torus::set_online(t, host);
        klog!("boot: torus {t} hosted by CPU {host}");
    }
}

/// Brings up the other CPUs the MADT lists (each runs [`ap_main`]), then
/// logs how many are online.
fn start_cpus(info: &hal::boot::BootInfo) {
    use core::fmt::Write;
    if !info.acpi_madt {
        klog!("boot: no ACPI MADT found, running on the bootstrap CPU only");
    }
    let r = hal::smp::start_aps(info.apic_ids(), ap_main);
    let mut ids = alloc::string::String::new();
    for (i, id) in r.online.iter().enumerate() {
        let _ = write!(ids, "{}{id}", if i == 0 { "" } else { " " });
    }
    klog!(
        "boot: {} CPUs online (APIC ids {ids}) in {} us",
        r.online.len(),
        r.took_us
    );
    for id in &r.failed {
        klog!(
            "boot: CPU with APIC id {id} did not come online within {} ms; continuing without it",
            hal::smp::AP_TIMEOUT_MS
        );
    }
    if r.skipped + info.cpus_ignored > 0 {
        klog!(
            "boot: {} more CPUs not started (at most {} supported)",
            r.skipped + info.cpus_ignored,
            hal::gdt::MAX_CPUS
        );
    }
}

fn on_off(b: bool) -> &'static str {
    if b {
        "on"
    } else {
        "off"
    }
}

#[panic_handler]
fn panic(pi: &core::panic::PanicInfo) -> ! {
    hal::cpu::disable_interrupts();
    log::set_console(true);
    klog!("KERNEL PANIC: {pi}");
    hal::exit::exit_qemu(hal::exit::ExitCode::Failure)
}
