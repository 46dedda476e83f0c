//! The NIC's transmit offloads on a tap (issue 14: "checksum offload if
//! cheap"), as root, in a network namespace of the test's own.
//!
//! On a tap with a virtio-net header QEMU's device offers checksum and
//! TCPv4 segmentation offload; RSE OS takes them and sends segments of up
//! to 64 KiB for the device to cut (kernel/src/net/wire.rs). The guest
//! serves 4 MiB of random bytes with busybox `httpd`; from the namespace
//! `curl` must get them byte for byte, and 4 MiB sent the other way
//! (bash's /dev/tcp into the guest's `nc`) must arrive whole. eth0's
//! counters must show large segments (more than a frame's 1514 bytes a
//! packet: Linux counts a segment the device cuts as one packet too).
//! The same boot with `net.offload=off` must send frames no larger than
//! the MTU, with the same bytes, so the check can tell the two apart.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::artifacts::Addition;
use crate::cluster::Netns;
use crate::qemu;
use crate::RunOpts;

const GUEST: &str = "10.77.0.2";
const SIZE: usize = 4 << 20;

const GUEST_SCRIPT: &str = r#"
httpd -p 80 -h /www
echo SERVING
# The host sends 4 MiB here once it has fetched the file.
nc -l -p 9 > /tmp/up.bin
echo "UP $(sha256sum /tmp/up.bin)"
echo "ETH0 $(grep eth0 /proc/net/dev)"
echo TSO DONE
"#;

/// `cargo xtask test net_tap_tso` (root).
pub fn tso_bulk() -> Result<(), String> {
    if !crate::deps::is_root() {
        return Err("needs root (network namespace and tap)".into());
    }
    crate::deps::ensure(&[&crate::deps::CURL])?;
    let ns = Netns::create(1)?;
    ns.address_bridge("10.77.0.1/24")?;
    let dir = crate::artifacts::out_dir();
    let file = dir.join(format!("tso-{}.bin", std::process::id()));
    let data = crate::artifacts::noise(SIZE, 0x9e37_79b9_7f4a_7c15);
    std::fs::write(&file, &data).map_err(|e| format!("{}: {e}", file.display()))?;
    let want = sha256(&file)?;
    let result = (|| {
        let on = boot(&ns, &file, &data, &want, true)?;
        let off = boot(&ns, &file, &data, &want, false)?;
        println!(
            "    4 MiB to the host: {:.0} ms with offloads ({:.0} bytes a packet), {:.0} ms without ({:.0})",
            on.0, on.1, off.0, off.1
        );
        Ok(())
    })();
    let _ = std::fs::remove_file(&file);
    result
}

/// One boot; (ms the download took, eth0's transmit bytes per packet).
fn boot(
    ns: &Netns,
    file: &Path,
    data: &[u8],
    want: &str,
    offload: bool,
) -> Result<(f64, f64), String> {
    let mode = if offload {
        "offloads"
    } else {
        "net.offload=off"
    };
    let mut append = vec![format!("ip={GUEST}::10.77.0.1:255.255.255.0")];
    if !offload {
        append.push("net.offload=off".into());
    }
    let opts = RunOpts {
        exec: Some(GUEST_SCRIPT.to_string()),
        net: true,
        tap: Some("tap0".into()),
        append,
        smp: Some(1),
        adds: vec![Addition {
            host: file.to_path_buf(),
            guest: "/www/big.bin".into(),
        }],
        log: true,
        ..Default::default()
    };
    let mut cfg = opts.config("net-tso")?;
    cfg.netns = Some(ns.name.clone());
    let got = file.with_extension("got");
    let (tx, rx) = std::sync::mpsc::channel();
    let (out, host) = std::thread::scope(|s| {
        let got = &got;
        let host = s.spawn(move || -> Result<f64, String> {
            rx.recv_timeout(Duration::from_secs(400))
                .map_err(|_| "the guest never printed SERVING".to_string())?;
            let start = Instant::now();
            let fetched = ns
                .command("curl")
                .args(["-sS", "--max-time", "60", "-o"])
                .arg(got)
                .arg(format!("http://{GUEST}/big.bin"))
                .output()
                .map_err(|e| format!("curl: {e}"))?;
            let ms = start.elapsed().as_secs_f64() * 1e3;
            // Whatever happened, the guest's nc gets its upload (or EOF).
            let up = ns
                .command("bash")
                .arg("-c")
                .arg(format!(
                    "cat {} > /dev/tcp/{GUEST}/9",
                    crate::terminal::shell_quote(&file.display().to_string())
                ))
                .status()
                .map_err(|e| format!("bash: {e}"))?;
            if !fetched.status.success() {
                return Err(format!(
                    "curl failed: {}",
                    String::from_utf8_lossy(&fetched.stderr)
                ));
            }
            if !up.success() {
                return Err("the upload into the guest failed".into());
            }
            Ok(ms)
        });
        let out = qemu::run_captured_notify(
            &cfg,
            Duration::from_secs(600),
            false,
            Some(("SERVING".into(), tx)),
        );
        (out, host.join())
    });
    let fetched = std::fs::read(&got).unwrap_or_default();
    let _ = std::fs::remove_file(&got);
    let _ = std::fs::remove_file(&cfg.log);
    if let Some(i) = &cfg.initrd {
        let _ = std::fs::remove_file(i);
    }
    let out = out.map_err(|e| format!("qemu: {e}"))?;
    let fail = |what: &str| crate::scenarios::explain(&out, &format!("{mode}: {what}"));
    let ms = host
        .map_err(|_| "host thread panicked")?
        .map_err(|e| fail(&e))?;
    let console = out.console_str();
    if !console.contains("TSO DONE") {
        return Err(fail("the guest did not finish"));
    }
    if fetched != data {
        return Err(fail(&format!(
            "curl got {} bytes that differ from the file's {}",
            fetched.len(),
            data.len()
        )));
    }
    let up = console
        .lines()
        .find_map(|l| l.strip_prefix("UP "))
        .and_then(|l| l.split_whitespace().next())
        .ok_or_else(|| fail("no UP line"))?;
    if up != want {
        return Err(fail(&format!(
            "the 4 MiB sent into the guest arrived as {up}, not {want}"
        )));
    }
    let said = if offload {
        "checksum and TSO offload"
    } else {
        "no offload"
    };
    if !console.contains(said) {
        return Err(fail(&format!("the kernel log does not say \"{said}\"")));
    }
    // eth0's transmit bytes and packets (/proc/net/dev columns 9 and 10).
    let eth0 = console
        .lines()
        .find_map(|l| l.strip_prefix("ETH0 "))
        .and_then(|l| l.split(':').nth(1))
        .ok_or_else(|| fail("no eth0 line from /proc/net/dev"))?;
    let cols: Vec<f64> = eth0
        .split_whitespace()
        .filter_map(|c| c.parse().ok())
        .collect();
    let (bytes, packets) = match cols.get(8..10) {
        Some(&[b, p]) if p > 0.0 => (b, p),
        _ => return Err(fail(&format!("unreadable eth0 line: {eth0}"))),
    };
    let per = bytes / packets;
    if offload && per <= 1514.0 {
        return Err(fail(&format!(
            "{per:.0} bytes a packet sent: no segment larger than a frame (TSO unused)"
        )));
    }
    if !offload && per > 1514.0 {
        return Err(fail(&format!(
            "{per:.0} bytes a packet sent without offloads: frames larger than the MTU"
        )));
    }
    Ok((ms, per))
}

fn sha256(path: &Path) -> Result<String, String> {
    let out = Command::new("sha256sum")
        .arg(path)
        .output()
        .map_err(|e| format!("sha256sum: {e}"))?;
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .map(str::to_string)
        .ok_or("sha256sum printed nothing".into())
}
