package tier0

// Linux errno values (include/uapi/asm-generic/errno-base.h, errno.h).
const (
	errEPERM     = 1
	errENOENT    = 2
	errESRCH     = 3
	errEINTR     = 4
	errEBADF     = 9
	errEAGAIN    = 11
	errENOMEM    = 12
	errEFAULT    = 14
	errEEXIST    = 17
	errENODEV    = 19
	errEINVAL    = 22
	errEMFILE    = 24
	errENOTTY    = 25
	errESPIPE    = 29
	errENOSYS    = 38
	errETIMEDOUT = 110
)
