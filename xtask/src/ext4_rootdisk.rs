//! Root on a disk: an image made by `image --disk --root` (the
//! initramfs's root: busybox, /etc, /dev, /proc, /tmp) boots with
//! `root=/dev/vda`: the shell that runs the test is the disk's, / is the
//! ext4 file system (/proc/mounts, statfs, a file only the image has),
//! /dev and /proc are the kernel's, the cwd moves between them and the
//! disk, umount / is EBUSY. It writes files and stops with `poweroff -f`;
//! on the host `e2fsck -fn` is clean and `debugfs` reads them back.

use std::process::Command;

use crate::ext4_programs::fsck_clean;
use crate::scenarios::{boot, expect_lines, explain};
use crate::{artifacts, RunOpts};

const SCRIPT: &str = r#"
echo "root $(grep ' / ' /proc/mounts | grep -v rootfs)"
echo "marker $(cat /etc/on-disk)"
echo "fstype $(stat -f -c %t /)"
echo "exe $(readlink /proc/self/exe)"
cd /tmp && echo "pwd $(pwd -P)"
cd /dev && echo "dev $(pwd -P) $(ls null vda | tr '\n' ' ')"
cd -P .. && echo "up $(pwd -P) $(cat etc/on-disk)"
echo "proc $(cut -d' ' -f2 /proc/self/stat)"
umount / 2>/dev/null; echo "umount / status $?"
echo written-on-disk > /root/hello.txt
mkdir -p /var/data && seq 1 20000 > /var/data/seq
echo "seq $(wc -l < /var/data/seq)"
poweroff -f
echo "poweroff returned"
"#;

pub fn ext4_root_on_disk() -> Result<(), String> {
    let id = std::process::id();
    let tree = artifacts::out_dir().join(format!("ext4-root-tree-{id}"));
    let img = artifacts::out_dir().join(format!("ext4-root-{id}.img"));
    let r = std::fs::create_dir_all(tree.join("etc"))
        .and_then(|()| std::fs::write(tree.join("etc/on-disk"), "from the image\n"))
        .map_err(|e| e.to_string())
        .and_then(|()| run(&tree, &img));
    let _ = std::fs::remove_dir_all(&tree);
    let _ = std::fs::remove_file(&img);
    r
}

fn run(tree: &std::path::Path, img: &std::path::Path) -> Result<(), String> {
    crate::disk_image::make(&crate::disk_image::DiskOpts {
        out: img.to_path_buf(),
        size: "64M".into(),
        pkgs: Vec::new(),
        root: true,
        dir: Some(tree.to_path_buf()),
    })?;
    let opts = RunOpts {
        exec: Some(SCRIPT.into()),
        disks: vec![img.to_path_buf()],
        append: vec!["root=/dev/vda".into()],
        ..Default::default()
    };
    let cfg = opts.config("ext4-root")?;
    let out = boot(&cfg, 300)?;
    if out.timed_out || !out.log.contains("reboot: the machine stops") {
        return Err(explain(&out, "no power-off"));
    }
    let c = out.console_str().replace("\r\n", "\n");
    expect_lines(
        &c,
        &[
            "root /dev/vda / ext4 rw,relatime 0 0".to_string(),
            "marker from the image".into(),
            "fstype ef53".into(),
            "exe /usr/bin/busybox".into(),
            "pwd /tmp".into(),
            "dev /dev null vda".into(),
            "up / from the image".into(),
            "proc (cut)".into(),
            "umount / status 1".into(),
            "seq 20000".into(),
        ],
    )
    .map_err(|e| format!("{e}\n--- kernel log ---\n{}", out.log))?;
    if c.contains("poweroff returned") {
        return Err(format!("poweroff -f returned:\n{c}"));
    }
    fsck_clean(img)?;
    let cat = |p: &str| -> Result<Vec<u8>, String> {
        let o = Command::new("/usr/sbin/debugfs")
            .args(["-R", &format!("cat {p}")])
            .arg(img)
            .output()
            .map_err(|e| format!("debugfs: {e}"))?;
        Ok(o.stdout)
    };
    let hello = cat("/root/hello.txt")?;
    if hello != b"written-on-disk\n" {
        return Err(format!(
            "debugfs cat /root/hello.txt: {:?}",
            String::from_utf8_lossy(&hello)
        ));
    }
    let seq: String = (1..=20000).map(|i| format!("{i}\n")).collect();
    if cat("/var/data/seq")? != seq.as_bytes() {
        return Err("debugfs cat /var/data/seq differs from seq 1 20000".into());
    }
    Ok(())
}
