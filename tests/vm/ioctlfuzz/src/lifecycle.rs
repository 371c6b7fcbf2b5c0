//! Module lifecycle: N cycles of load, a guest that does two port writes,
//! rmmod refused while the VM exists, teardown, unload.

use crate::gen::{self, S};
use crate::ioctls::*;
use crate::sys::{errno, errno_name, ioctl, kvm_run};
use crate::{check, modules, Opts};
use std::time::Instant;

fn sb(fd: i32, cmd: u32, s: &S) -> Result<i64, i32> {
    let mut b = s.b.clone();
    b.resize(4096, 0);
    ioctl(fd, cmd, b.as_mut_ptr() as u64)
}

/// One cycle with the modules loaded: a guest writes 0x42 to port 0x10 and
/// 0x43 to port 0x11; rmmod of both modules is refused while the VM lives.
fn guest(i: u32) -> Result<(), String> {
    let kvm = unsafe { libc::open(c"/dev/kvm".as_ptr(), libc::O_RDWR | libc::O_CLOEXEC) };
    if kvm < 0 {
        return Err(format!("open /dev/kvm: {}", errno_name(errno())));
    }
    let e = |w: &str, e: i32| format!("{w}: {}", errno_name(e));
    let res = (|| {
        let vm = ioctl(kvm, KVM_CREATE_VM, 0).map_err(|x| e("CREATE_VM", x))? as i32;
        let len = 0x10000usize;
        // SAFETY: fresh mapping, guest code written into it.
        let mem = unsafe { libc::mmap(std::ptr::null_mut(), len, libc::PROT_READ | libc::PROT_WRITE, libc::MAP_PRIVATE | libc::MAP_ANONYMOUS, -1, 0) } as usize;
        let code = [0xb0, 0x42, 0xe6, 0x10, 0xb0, 0x43, 0xe6, 0x11, 0xf4, 0xeb, 0xfe];
        unsafe { std::ptr::copy_nonoverlapping(code.as_ptr(), (mem + gen::CODE as usize) as *mut u8, code.len()) };
        let r = (|| {
            let mut s = S::new(32);
            s.u64(16, len as u64).u64(24, mem as u64);
            sb(vm, KVM_SET_USER_MEMORY_REGION, &s).map_err(|x| e("SET_USER_MEMORY_REGION", x))?;
            if i % 2 == 1 {
                ioctl(vm, KVM_CREATE_IRQCHIP, 0).map_err(|x| e("CREATE_IRQCHIP", x))?;
            }
            let vcpu = ioctl(vm, KVM_CREATE_VCPU, 0).map_err(|x| e("CREATE_VCPU", x))? as i32;
            // kvm_run and the PIO data page after it.
            let rlen = ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0).unwrap_or(0).max(8192) as usize;
            let run = unsafe { libc::mmap(std::ptr::null_mut(), rlen, libc::PROT_READ | libc::PROT_WRITE, libc::MAP_SHARED, vcpu, 0) };
            let r = (|| {
                if run == libc::MAP_FAILED {
                    return Err("mmap kvm_run failed".to_string());
                }
                let run = run as usize;
                let mut rng = crate::rng::Rng::new(0);
                sb(vcpu, KVM_SET_SREGS, &gen::sregs_real(&mut rng)).map_err(|x| e("SET_SREGS", x))?;
                sb(vcpu, KVM_SET_REGS, &gen::regs(&mut rng)).map_err(|x| e("SET_REGS", x))?;
                for (port, val) in [(0x10u16, 0x42u8), (0x11, 0x43)] {
                    let mut got = None;
                    for _ in 0..50 {
                        match kvm_run(vcpu, 100_000) {
                            Ok(_) => {
                                got = Some(());
                                break;
                            }
                            Err(libc::EINTR) => continue,
                            Err(x) => return Err(e("KVM_RUN", x)),
                        }
                    }
                    got.ok_or("KVM_RUN: interrupted 50 times")?;
                    // SAFETY: kvm_run page: exit_reason @8, io {direction u8 @32, size u8 @33, port u16 @34, count u32 @36, data_offset u64 @40}.
                    let (reason, p, off) = unsafe { (*((run + 8) as *const u32), *((run + 34) as *const u16), *((run + 40) as *const u64)) };
                    if off as usize >= rlen {
                        return Err(format!("KVM_EXIT_IO data_offset {off:#x} outside the {rlen:#x}-byte vCPU mapping"));
                    }
                    let data = unsafe { *((run + off as usize) as *const u8) };
                    if reason != 2 || p != port || data != val {
                        return Err(format!("exit {reason} port {p:#x} data {data:#x}, want KVM_EXIT_IO port {port:#x} data {val:#x}"));
                    }
                }
                // rmmod refused while the VM exists.
                for m in ["kvm_amd", "kvm"] {
                    match modules::unload(m) {
                        Err(libc::EAGAIN) | Err(libc::EBUSY) if modules::loaded(m) => {}
                        Err(x) => return Err(format!("rmmod {m} with a VM: {}, want EWOULDBLOCK", errno_name(x))),
                        Ok(()) => return Err(format!("rmmod {m} succeeded while a VM exists")),
                    }
                }
                Ok(())
            })();
            if run != libc::MAP_FAILED {
                unsafe { libc::munmap(run, rlen) };
            }
            unsafe { libc::close(vcpu) };
            r
        })();
        unsafe {
            libc::close(vm);
            libc::munmap(mem as *mut _, len);
        }
        r
    })();
    unsafe { libc::close(kvm) };
    res
}

pub fn run(o: &Opts) -> bool {
    let n = o.lifecycle;
    let name = format!("{}/{n}-load-run-unload-cycles", o.name);
    if !o.m.given() {
        println!("SKIP {name}: no modules given");
        return true;
    }
    let t0 = Instant::now();
    let r = (|| {
        for i in 0..n {
            o.m.load_all().map_err(|e| format!("cycle {i}: {e}"))?;
            let g = guest(i).map_err(|e| format!("cycle {i}: {e}"));
            // Unload even after a failure; VM teardown may be deferred.
            let mut u = Err(String::new());
            for _ in 0..100 {
                u = o.m.unload_all();
                if u.is_ok() {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            g?;
            u.map_err(|e| format!("cycle {i}: {e}"))?;
            if std::path::Path::new("/dev/kvm").exists() {
                return Err(format!("cycle {i}: /dev/kvm still there after unload"));
            }
        }
        Ok(())
    })();
    println!("INFO {name} took {:.1} s", t0.elapsed().as_secs_f64());
    check(&name, r)
}
