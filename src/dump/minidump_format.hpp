// The on-disk structures of a minidump ("MDMP") as Breakpad's processor,
// rust-minidump, lldb and Sentry read them on Linux. Little-endian; every RVA
// is a 32-bit file offset unless the field says otherwise. Sizes and offsets
// are checked below: a struct one byte off makes a reader drop the stream, or
// the whole file.
#pragma once

#include <cstddef>
#include <cstdint>

namespace panicstop::detail::md {

inline constexpr uint32_t kSignature = 0x504D444D;  // "MDMP"
inline constexpr uint32_t kVersion = 0xA793;        // low 16 bits; readers check them

// Stream types.
enum StreamType : uint32_t {
  kThreadList = 3,
  kModuleList = 4,
  kMemoryList = 5,
  kException = 6,
  kSystemInfo = 7,
  kMiscInfo = 15,
  kMemoryInfoList = 16,
  kThreadNameList = 24,
  kBreakpadInfo = 0x47670001,
  kAssertionInfo = 0x47670002,
  kLinuxCpuInfo = 0x47670003,
  kLinuxProcStatus = 0x47670004,
  kLinuxLsbRelease = 0x47670005,
  kLinuxCmdLine = 0x47670006,
  kLinuxEnviron = 0x47670007,
  kLinuxAuxv = 0x47670008,
  kLinuxMaps = 0x47670009,
  kCrashpadInfo = 0x43500001,
};

#pragma pack(push, 4)

struct Header {
  uint32_t signature;
  uint32_t version;
  uint32_t stream_count;
  uint32_t stream_directory_rva;
  uint32_t checksum;
  uint32_t time_date_stamp;  // Unix seconds; Sentry takes it as the event time
  uint64_t flags;
};
static_assert(sizeof(Header) == 32);

struct Location {
  uint32_t data_size;
  uint32_t rva;
};
static_assert(sizeof(Location) == 8);

struct Directory {
  uint32_t stream_type;
  Location location;
};
static_assert(sizeof(Directory) == 12);

struct MemoryDescriptor {
  uint64_t start_of_memory_range;
  Location memory;
};
static_assert(sizeof(MemoryDescriptor) == 16);

struct Thread {
  uint32_t thread_id;
  uint32_t suspend_count;
  uint32_t priority_class;
  uint32_t priority;
  uint64_t teb;
  MemoryDescriptor stack;
  Location thread_context;
};
static_assert(sizeof(Thread) == 48);
static_assert(offsetof(Thread, stack) == 24 && offsetof(Thread, thread_context) == 40);

// One ThreadNameList entry: the name's RVA is 64 bits and the entry packed to 4.
struct ThreadName {
  uint32_t thread_id;
  uint64_t name_rva;
};
static_assert(sizeof(ThreadName) == 12);

// MDRawModule. Its sizeof would be 112 with natural alignment; readers step
// through the list 108 bytes at a time.
struct Module {
  uint64_t base_of_image;
  uint32_t size_of_image;
  uint32_t checksum;
  uint32_t time_date_stamp;
  uint32_t module_name_rva;
  uint32_t version_info[13];  // VS_FIXEDFILEINFO, zero on Linux
  Location cv_record;
  Location misc_record;
  uint32_t reserved[4];
};
static_assert(sizeof(Module) == 108);
static_assert(offsetof(Module, cv_record) == 76 && offsetof(Module, misc_record) == 84);

// The CodeView record of an ELF module: this signature ('BpEL' read as a
// little-endian u32), then the GNU build id bytes.
inline constexpr uint32_t kCvElfSignature = 0x4270454C;

struct Exception {
  uint32_t thread_id;
  uint32_t pad0;
  uint32_t exception_code;   // signal number
  uint32_t exception_flags;  // si_code
  uint64_t exception_record;
  uint64_t exception_address;
  uint32_t number_parameters;
  uint32_t pad1;
  uint64_t information[15];
  Location thread_context;
};
static_assert(sizeof(Exception) == 168);
static_assert(offsetof(Exception, exception_address) == 24 && offsetof(Exception, thread_context) == 160);

struct SystemInfo {
  uint16_t processor_architecture;
  uint16_t processor_level;
  uint16_t processor_revision;
  uint8_t number_of_processors;
  uint8_t product_type;
  uint32_t major_version, minor_version, build_number;
  uint32_t platform_id;
  uint32_t csd_version_rva;  // MDString: "Linux RELEASE VERSION MACHINE"
  uint16_t suite_mask, reserved2;
  uint32_t cpu[6];           // x86: vendor id (3 words), version, features, AMD features
};
static_assert(sizeof(SystemInfo) == 56);
static_assert(offsetof(SystemInfo, platform_id) == 20 && offsetof(SystemInfo, cpu) == 32);

inline constexpr uint16_t kArchAmd64 = 9;
inline constexpr uint16_t kArchArm64Old = 0x8003;  // with ContextArm64Old
inline constexpr uint32_t kPlatformLinux = 0x8201;

// MemoryInfoList: this header, then one MemoryInfo per mapping.
struct MemoryInfoListHeader {
  uint32_t size_of_header;  // 16
  uint32_t size_of_entry;   // 48
  uint64_t number_of_entries;
};
static_assert(sizeof(MemoryInfoListHeader) == 16);

struct MemoryInfo {
  uint64_t base_address;
  uint64_t allocation_base;
  uint32_t allocation_protection;
  uint32_t alignment1;
  uint64_t region_size;
  uint32_t state;       // kMemCommit
  uint32_t protection;  // kPage*
  uint32_t type;        // kMemPrivate, kMemMapped, kMemImage
  uint32_t alignment2;
};
static_assert(sizeof(MemoryInfo) == 48);
inline constexpr uint32_t kMemCommit = 0x1000;
inline constexpr uint32_t kPageNoAccess = 0x1, kPageReadOnly = 0x2, kPageReadWrite = 0x4, kPageExecute = 0x10,
                          kPageExecuteRead = 0x20, kPageExecuteReadWrite = 0x40;
inline constexpr uint32_t kMemPrivate = 0x20000, kMemMapped = 0x40000, kMemImage = 0x1000000;

// The smallest MiscInfo readers accept (their size must be one of a few).
struct MiscInfo {
  uint32_t size_of_info;
  uint32_t flags1;
  uint32_t process_id;
  uint32_t process_create_time;  // Unix seconds
  uint32_t process_user_time;    // seconds
  uint32_t process_kernel_time;
};
static_assert(sizeof(MiscInfo) == 24);
inline constexpr uint32_t kMiscProcessId = 1, kMiscProcessTimes = 2;

struct BreakpadInfo {
  uint32_t validity;  // bit 0: dump_thread_id valid, bit 1: requesting_thread_id valid
  uint32_t dump_thread_id;
  uint32_t requesting_thread_id;
};
static_assert(sizeof(BreakpadInfo) == 12);
inline constexpr uint32_t kBreakpadRequestingThreadValid = 2;

struct AssertionInfo {
  uint16_t expression[128];  // UTF-16, NUL-terminated
  uint16_t function[128];
  uint16_t file[128];
  uint32_t line;
  uint32_t type;
};
static_assert(sizeof(AssertionInfo) == 776);

struct CrashpadInfo {
  uint32_t version;  // 1; 0 is rejected
  uint8_t report_id[16];
  uint8_t client_id[16];
  Location simple_annotations;  // u32 count; {u32 key_rva; u32 value_rva}[count], UTF-8 strings
  Location module_list;
  uint32_t reserved;
  uint64_t address_mask;
};
static_assert(sizeof(CrashpadInfo) == 64);
static_assert(offsetof(CrashpadInfo, simple_annotations) == 36 && offsetof(CrashpadInfo, address_mask) == 56);

// x86-64 CONTEXT (MDRawContextAMD64), 1232 bytes.
struct ContextAmd64 {
  uint64_t p_home[6];
  uint32_t context_flags;
  uint32_t mx_csr;
  uint16_t cs, ds, es, fs, gs, ss;
  uint32_t eflags;
  uint64_t dr0, dr1, dr2, dr3, dr6, dr7;
  uint64_t rax, rcx, rdx, rbx, rsp, rbp, rsi, rdi;
  uint64_t r8, r9, r10, r11, r12, r13, r14, r15;
  uint64_t rip;
  uint8_t flt_save[512];  // the FXSAVE area, as the kernel's signal frame has it
  uint8_t vector_register[26][16];
  uint64_t vector_control;
  uint64_t debug_control, last_branch_to_rip, last_branch_from_rip;
  uint64_t last_exception_to_rip, last_exception_from_rip;
};
static_assert(sizeof(ContextAmd64) == 1232);
static_assert(offsetof(ContextAmd64, context_flags) == 48 && offsetof(ContextAmd64, cs) == 56);
static_assert(offsetof(ContextAmd64, eflags) == 68 && offsetof(ContextAmd64, rax) == 120);
static_assert(offsetof(ContextAmd64, rsp) == 152 && offsetof(ContextAmd64, rip) == 248);
static_assert(offsetof(ContextAmd64, flt_save) == 256 && offsetof(ContextAmd64, vector_control) == 1184);

inline constexpr uint32_t kContextAmd64 = 0x00100000;
inline constexpr uint32_t kAmd64Control = 0x1, kAmd64Integer = 0x2, kAmd64Segments = 0x4, kAmd64Float = 0x8;

// ARM64 in the old layout (MDRawContextARM64_Old, 64-bit flags). lldb reads
// only this one, Breakpad writes it with architecture 0x8003.
struct ContextArm64Old {
  uint64_t context_flags;
  uint64_t iregs[33];  // x0-x30, sp, pc
  uint32_t cpsr, fpsr, fpcr;
  uint8_t vregs[32][16];
};
static_assert(sizeof(ContextArm64Old) == 796);
static_assert(offsetof(ContextArm64Old, cpsr) == 272 && offsetof(ContextArm64Old, vregs) == 284);
inline constexpr uint64_t kContextArm64Old = 0x80000000;
inline constexpr uint64_t kArm64OldInteger = 0x2, kArm64OldFloat = 0x4;

#pragma pack(pop)

// Linux si_code values are passed through unchanged as exception_flags.
// Breakpad's "requested dump" exception code.
inline constexpr uint32_t kDumpRequested = 0xFFFFFFFF;

}  // namespace panicstop::detail::md
