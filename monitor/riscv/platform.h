/* Memory map of the RISC-V reference monitor (QEMU virt, -m 256M). Included by
 * abi.h. Each region is a naturally aligned power of two (PMP NAPOT). */
#ifndef REWIRE_MONITOR_PLATFORM_H
#define REWIRE_MONITOR_PLATFORM_H
#define MON_BASE 0x80000000UL /* M-mode only: monitor, librewire, its heap */
#define HOST_BASE 0x84000000UL /* the untrusted host program, U-mode */
#define HOST_SIZE 0x01000000UL
#define ENC_BASE 0x85000000UL /* the enclaves, U-mode: ENC_SLOTS slots of ENC_SLOT_SIZE (abi.h) */
#define ENC_SIZE 0x01000000UL
#define ENC_SLOT_SIZE 0x00400000UL
#define ENC_STATE_MAX 0x140000UL /* 1.25 MiB: a checkpoint of the slot fits CKPT_SLOT_SIZE */
#define CLINT_MTIMECMP 0x02004000UL /* hart 0 (M-mode only: outside every PMP window) */
#define CLINT_MTIME 0x0200bff8UL
#define MMIO_BASE 0x10000000UL /* UART 0x10000000, virtio-mmio 0x10001000..0x10008fff */
#define MMIO_SIZE 0x00010000UL
#define UART_BASE 0x10000000UL /* 16550 */
#define VIRTIO_FIRST 0x10001000UL /* the virtio-mmio transports the host scans */
#define VIRTIO_LAST 0x10008000UL
#define VIRTIO_STRIDE 0x1000UL
#define FLASH_BASE 0x22000000UL /* pflash1: 32 MiB, backed by a file on the Linux side */
#define FLASH_HOST 0x22000000UL /* first 16 MiB: untrusted storage the host may read and write */
#define FLASH_HOST_SIZE 0x01000000UL
#define FLASH_MON 0x23000000UL /* last 16 MiB: monotonic counter and root of trust, M-mode only */
#define ISOLATION "PMP"        /* what fences the host and the enclave (log lines) */
#define ENC_STATE_TEXT "0x85020000"
#endif
