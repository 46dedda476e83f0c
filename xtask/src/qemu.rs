//! QEMU command lines, built in one place, and running them.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Machine type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Machine {
    /// `-M microvm`: no firmware, boots in tens of ms.
    Microvm,
    /// `-M pc`: SeaBIOS first (needed for the GRUB ISO).
    Pc,
    /// `-M q35`.
    Q35,
}

/// Accelerator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Accel {
    Tcg,
    Kvm,
}

impl Accel {
    /// KVM only where the CPU has hardware virtualization: /dev/kvm on
    /// these machines is kvm_pvm, which cannot run an ordinary guest kernel.
    pub fn detect() -> Accel {
        let flags = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let hw = flags
            .lines()
            .filter(|l| l.starts_with("flags"))
            .any(|l| l.split_whitespace().any(|f| f == "vmx" || f == "svm"));
        if hw && Path::new("/dev/kvm").exists() {
            Accel::Kvm
        } else {
            Accel::Tcg
        }
    }

    pub fn parse(s: &str) -> Result<Accel, String> {
        match s {
            "tcg" => Ok(Accel::Tcg),
            "kvm" => Ok(Accel::Kvm),
            _ => Err(format!("unknown accelerator {s:?} (tcg or kvm)")),
        }
    }
}

impl Machine {
    pub fn parse(s: &str) -> Result<Machine, String> {
        match s {
            "microvm" => Ok(Machine::Microvm),
            "pc" => Ok(Machine::Pc),
            "q35" => Ok(Machine::Q35),
            _ => Err(format!("unknown machine {s:?} (microvm, pc or q35)")),
        }
    }
}

/// What to boot and how.
#[derive(Clone, Debug)]
pub struct Config {
    pub machine: Machine,
    pub accel: Accel,
    pub smp: u32,
    pub mem_mib: u32,
    /// `-kernel` ELF, or None when booting `cdrom`.
    pub kernel: Option<PathBuf>,
    pub cdrom: Option<PathBuf>,
    pub initrd: Option<PathBuf>,
    pub append: String,
    /// Where the kernel log (debug console) goes.
    pub log: PathBuf,
    /// `-icount shift=0,sleep=off`: guest time counts instructions.
    pub icount: bool,
    /// The console text whose first appearance [`Outcome::ready_wall`] times.
    pub ready_mark: String,
    /// A virtio-net NIC, and what its other end is.
    pub net: Option<Net>,
    /// Raw disk images attached as virtio-blk disks (vda, vdb, … in order).
    pub disks: Vec<PathBuf>,
    /// blkdebug rules for the first disk (injected I/O errors).
    pub disk_errors: Option<PathBuf>,
    /// Run QEMU inside this network namespace (`ip netns exec`, which
    /// execs it: the child's pid is QEMU's), for a tap that lives there.
    pub netns: Option<String>,
    /// Wait for a debugger on this 127.0.0.1 port before running
    /// (`-gdb tcp:... -S`; `cargo xtask trace`).
    pub gdb_port: Option<u16>,
    /// QEMU writes its pid here (`-pidfile`): a harness that charges the
    /// process's CPU time to its loads (`bench apps`).
    pub pidfile: Option<PathBuf>,
}

/// The host side of the guest's NIC.
#[derive(Clone, Debug)]
pub enum Net {
    /// QEMU user networking with `restrict=on`: the guest reaches only
    /// QEMU's own services (DHCP); these (host port, guest port) pairs
    /// forward host 127.0.0.1 TCP ports into it.
    User(Vec<(u16, u16)>),
    /// Raw Ethernet frames as UDP datagrams on the host's loopback: QEMU
    /// receives on 127.0.0.1:`qemu_port` and sends to 127.0.0.1:`peer_port`
    /// (a test crafting frames itself).
    Udp { qemu_port: u16, peer_port: u16 },
    /// A tap device that already exists (`--net tap=IF`, or one of the
    /// cluster's taps inside its network namespace), with this MAC (QEMU's
    /// default 52:54:00:12:34:56 when None: two VMs on one bridge each
    /// need their own).
    Tap { ifname: String, mac: Option<String> },
}

impl Config {
    pub fn new(kernel: &Path, log: &Path) -> Config {
        Config {
            machine: Machine::Microvm,
            accel: Accel::detect(),
            smp: 3,
            mem_mib: 1024,
            kernel: Some(kernel.to_path_buf()),
            cdrom: None,
            initrd: None,
            append: String::new(),
            log: log.to_path_buf(),
            icount: false,
            ready_mark: "RSE OS ready".into(),
            net: None,
            disks: Vec::new(),
            disk_errors: None,
            netns: None,
            gdb_port: None,
            pidfile: None,
        }
    }

    /// The full QEMU argument list.
    pub fn args(&self) -> Vec<String> {
        let mut a: Vec<String> = Vec::new();
        let mut push = |xs: &[&str]| a.extend(xs.iter().map(|s| s.to_string()));
        match self.machine {
            Machine::Microvm => push(&["-M", "microvm"]),
            Machine::Pc => push(&["-M", "pc"]),
            Machine::Q35 => push(&["-M", "q35"]),
        }
        match self.accel {
            Accel::Tcg => push(&["-accel", "tcg", "-cpu", "max"]),
            Accel::Kvm => push(&["-accel", "kvm", "-cpu", "host"]),
        }
        if self.icount {
            push(&["-icount", "shift=0,sleep=off"]);
        }
        let smp = self.smp.to_string();
        let mem = format!("{}M", self.mem_mib);
        let log = format!("file:{}", self.log.display());
        push(&[
            "-smp",
            &smp,
            "-m",
            &mem,
            "-display",
            "none",
            // A chardev rather than `-serial stdio`: `signal=off` makes
            // QEMU pass Ctrl-C to the guest (whose tty turns it into SIGINT)
            // instead of dying of it; `mux=on` keeps Ctrl-A x to quit.
            "-chardev",
            "stdio,id=con,signal=off,mux=on",
            "-serial",
            "chardev:con",
            "-mon",
            "chardev=con,mode=readline",
            "-no-reboot",
        ]);
        push(&[
            "-debugcon",
            &log,
            "-device",
            "isa-debug-exit,iobase=0xf4,iosize=4",
        ]);
        if let Some(k) = &self.kernel {
            push(&["-kernel", &k.display().to_string(), "-append", &self.append]);
            if let Some(i) = &self.initrd {
                push(&["-initrd", &i.display().to_string()]);
            }
        }
        if let Some(net) = &self.net {
            let netdev = match net {
                // restrict=on: the guest cannot reach the host or beyond;
                // only the forwarded loopback ports come in.
                Net::User(forwards) => {
                    let mut d = String::from("user,id=n0,restrict=on");
                    for (host, guest) in forwards {
                        d += &format!(",hostfwd=tcp:127.0.0.1:{host}-:{guest}");
                    }
                    d
                }
                Net::Udp {
                    qemu_port,
                    peer_port,
                } => format!(
                    "socket,id=n0,udp=127.0.0.1:{peer_port},localaddr=127.0.0.1:{qemu_port}"
                ),
                // script=no: the tap is set up already (bridged or not);
                // QEMU only opens it.
                Net::Tap { ifname, .. } => {
                    format!("tap,id=n0,ifname={ifname},script=no,downscript=no")
                }
            };
            let mut device = String::from(match self.machine {
                Machine::Microvm => "virtio-net-device,netdev=n0",
                Machine::Pc | Machine::Q35 => "virtio-net-pci,netdev=n0",
            });
            if let Net::Tap { mac: Some(mac), .. } = net {
                device += &format!(",mac={mac}");
            }
            push(&["-netdev", &netdev, "-device", &device]);
        }
        for (i, d) in self.disks.iter().enumerate() {
            // Raw format (no probing of the guest-written content), QEMU's
            // default write-back cache: the guest's flush requests are what
            // make its writes durable, as on a real disk.
            let file = match (&self.disk_errors, i) {
                (Some(rules), 0) => format!("blkdebug:{}:{}", rules.display(), d.display()),
                _ => d.display().to_string(),
            };
            let drive = format!("file={file},format=raw,if=none,id=disk{i},cache=writeback");
            let device = match self.machine {
                Machine::Microvm => format!("virtio-blk-device,drive=disk{i}"),
                Machine::Pc | Machine::Q35 => format!("virtio-blk-pci,drive=disk{i}"),
            };
            push(&["-drive", &drive, "-device", &device]);
        }
        if let Some(c) = &self.cdrom {
            push(&["-cdrom", &c.display().to_string(), "-boot", "d"]);
        }
        if let Some(port) = self.gdb_port {
            push(&["-gdb", &format!("tcp:127.0.0.1:{port}"), "-S"]);
        }
        if let Some(p) = &self.pidfile {
            push(&["-pidfile", &p.display().to_string()]);
        }
        // Debugging aid: more QEMU arguments from the environment (say, a
        // monitor socket to read the CPUs' registers of a hung guest).
        if let Ok(extra) = std::env::var("RSE_QEMU_ARGS") {
            a.extend(extra.split_whitespace().map(String::from));
        }
        a
    }
}

/// How a run ended.
#[derive(Debug)]
pub struct Outcome {
    /// Everything the guest wrote to the serial console.
    pub console: Vec<u8>,
    /// The kernel log (debug console).
    pub log: String,
    /// QEMU's exit status: 1 = orderly exit, 3 = kernel failure; None = killed.
    pub qemu_status: Option<i32>,
    pub timed_out: bool,
    /// Wall time from starting QEMU to the console showing the ready mark
    /// ("RSE OS ready" unless the config says otherwise).
    pub ready_wall: Option<Duration>,
}

impl Outcome {
    /// Whether the kernel ended the run in an orderly way.
    pub fn kernel_ok(&self) -> bool {
        self.qemu_status == Some(1)
    }

    /// The exit status of the guest command (`--exec`), from the kernel log:
    /// init's, or 0 when the guest powered itself off (reboot(2): `poweroff
    /// -f`, or rsebench ending as init), an orderly end of the command.
    pub fn guest_status(&self) -> Option<i32> {
        self.log.lines().rev().find_map(|l| {
            if let Some(s) = l.split("init exited: status=").nth(1) {
                s.trim().parse().ok()
            } else if l.contains("reboot: the machine stops") {
                Some(0)
            } else {
                None
            }
        })
    }

    pub fn console_str(&self) -> String {
        String::from_utf8_lossy(&self.console).into_owned()
    }
}

pub fn qemu_binary() -> &'static str {
    "qemu-system-x86_64"
}

/// Boots interactively: the serial console is this terminal.
pub fn run_interactive(cfg: &Config) -> std::io::Result<i32> {
    let st = Command::new(qemu_binary()).args(cfg.args()).status()?;
    Ok(st.code().unwrap_or(255))
}

/// Boots with stdin from /dev/null, collecting console output (and echoing
/// it to our stdout when `echo`), killing QEMU after `timeout`.
pub fn run_captured(cfg: &Config, timeout: Duration, echo: bool) -> std::io::Result<Outcome> {
    run_captured_notify(cfg, timeout, echo, None)
}

/// [`run_captured`], and once the console first shows `notify.0`, a
/// message on `notify.1` (a scenario acting from the host while the guest
/// runs, e.g. connecting through a forwarded port).
pub fn run_captured_notify(
    cfg: &Config,
    timeout: Duration,
    echo: bool,
    notify: Option<(String, std::sync::mpsc::Sender<()>)>,
) -> std::io::Result<Outcome> {
    let _ = std::fs::remove_file(&cfg.log);
    let start = Instant::now();
    let mut cmd = match &cfg.netns {
        Some(ns) => {
            let mut c = Command::new("ip");
            c.args(["netns", "exec", ns, qemu_binary()]);
            c
        }
        None => Command::new(qemu_binary()),
    };
    let mut child = cmd
        .args(cfg.args())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()?;
    let mut out = child.stdout.take().expect("piped stdout");
    let mark = cfg.ready_mark.clone().into_bytes();
    let mut notify = notify.map(|(m, tx)| (m.into_bytes(), tx));
    let reader = std::thread::spawn(move || {
        let mut all = Vec::new();
        let mut ready = None;
        let mut buf = [0u8; 4096];
        let mut stdout = std::io::stdout();
        loop {
            match out.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if echo {
                        use std::io::Write;
                        let _ = stdout.write_all(&buf[..n]);
                        let _ = stdout.flush();
                    }
                    all.extend_from_slice(&buf[..n]);
                    if ready.is_none() && all.windows(mark.len()).any(|w| w == mark) {
                        ready = Some(start.elapsed());
                    }
                    let seen = |m: &[u8]| all.windows(m.len()).any(|w| w == m);
                    if notify.as_ref().is_some_and(|(m, _)| seen(m)) {
                        if let Some((_, tx)) = notify.take() {
                            let _ = tx.send(());
                        }
                    }
                }
            }
        }
        (all, ready)
    });
    let mut timed_out = false;
    let status = loop {
        if let Some(st) = child.try_wait()? {
            break st.code();
        }
        if start.elapsed() > timeout {
            timed_out = true;
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let (console, ready_wall) = reader.join().unwrap_or_default();
    let log = std::fs::read_to_string(&cfg.log).unwrap_or_default();
    Ok(Outcome {
        console,
        log,
        qemu_status: status,
        timed_out,
        ready_wall,
    })
}

#[cfg(test)]
mod tests {
    use super::Outcome;

    fn with_log(log: &str) -> Outcome {
        Outcome {
            console: Vec::new(),
            log: log.into(),
            qemu_status: Some(1),
            timed_out: false,
            ready_wall: None,
        }
    }

    #[test]
    fn guest_status_from_init_or_power_off() {
        assert_eq!(
            with_log("x\n[ 1 us] init exited: status=3\n").guest_status(),
            Some(3)
        );
        let off = "[ 1 us] reboot: the machine stops (command 0x4321fedc)\n";
        assert_eq!(with_log(off).guest_status(), Some(0));
        assert_eq!(with_log("[ 1 us] boot\n").guest_status(), None);
    }
}
