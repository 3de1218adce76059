/* Entry of the gmem-vmm guest. The VMM starts every vCPU here in 64-bit mode with its own stack
 * (rsp) and its vCPU id in rdi; interrupts stay off for the whole run. */
	.section .text.entry, "ax"
	.globl _start
_start:
	cld
	call guest_main
1:	hlt
	jmp 1b

	.section .note.GNU-stack, "", @progbits
