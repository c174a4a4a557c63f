/* Memory map of the Arm reference monitor (QEMU virt,secure=on, -cpu max,
 * -m 256M). Included by abi.h. The monitor and the enclave live in secure RAM,
 * which only the secure world can address (TrustZone); the host in NS RAM.
 * Checked against `qemu-system-aarch64 -machine virt,secure=on,dumpdtb=`. */
#ifndef REWIRE_MONITOR_PLATFORM_H
#define REWIRE_MONITOR_PLATFORM_H
#define MON_BASE 0x0e000000UL  /* secure RAM (16 MiB): EL3 monitor, librewire, its heap */
#define MON_SIZE 0x00e00000UL
#define ENC_BASE 0x0ee00000UL  /* secure RAM, last 2 MiB: the enclaves, S-EL0: ENC_SLOTS slots (abi.h) */
#define ENC_SIZE 0x00200000UL
#define ENC_SLOT_SIZE 0x00080000UL
#define ENC_STATE_MAX 0x60000UL /* what a 512 KiB slot leaves after code and stack */
#define HOST_BASE 0x44000000UL /* NS RAM: the untrusted host program, NS-EL1 (QEMU puts its DTB at 0x40000000) */
#define HOST_SIZE 0x01000000UL
#define NS_RAM_BASE 0x40000000UL
#define UART_BASE 0x09000000UL /* PL011 (non-secure, shared with the host) */
#define RTC_BASE 0x09010000UL  /* PL031 (non-secure: the host can set it) */
#define SGPIO_BASE 0x090b0000UL /* secure PL061: line 1 is QEMU's power-off */
#define VIRTIO_FIRST 0x0a000000UL /* 32 virtio-mmio transports */
#define VIRTIO_LAST 0x0a003e00UL
#define VIRTIO_STRIDE 0x200UL
#define FLASH_BASE 0x04000000UL /* pflash1 (non-secure, 64 MiB), backed by a file on the Linux side */
#define FLASH_HOST 0x04000000UL /* first 16 MiB: untrusted storage the host may read and write */
#define FLASH_HOST_SIZE 0x01000000UL
#define BOOT_ROM 0x00000000UL   /* pflash0 (secure-only, 64 MiB), first 16 MiB: the boot image (reset vector) */
#define FLASH_MON 0x01000000UL  /* pflash0, second 16 MiB: monotonic counter, fuses */
#define ISOLATION "TrustZone"
#define ENC_STATE_TEXT "0x0ee20000"
#endif
