/* The part of LiteRT's C API (libLiteRt.so, symbol version VERS_1.0) that libbokeh calls.
 *
 * Facts of an ABI, declared here rather than copied from LiteRT's headers: function
 * signatures, enum values and struct layouts as google-ai-edge/LiteRT's litert/c/ defines
 * them (litert_common.h, litert_any.h, litert_environment.h, litert_environment_options.h,
 * litert_model.h, litert_model_types.h, litert_layout.h, litert_options.h,
 * litert_opaque_options.h, litert_compiled_model.h, litert_tensor_buffer.h,
 * litert_tensor_buffer_types.h). tests/test_native_abi.py checks that every function
 * named here is exported by the real library; the static asserts below pin the layouts
 * that LiteRT itself static-asserts. */
#ifndef BOKEH_LITERT_ABI_H
#define BOKEH_LITERT_ABI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct LiteRtEnvironmentT *LiteRtEnvironment;
typedef struct LiteRtModelT *LiteRtModel;
typedef struct LiteRtSignatureT *LiteRtSignature;
typedef struct LiteRtTensorT *LiteRtTensor;
typedef struct LiteRtOptionsT *LiteRtOptions;
typedef struct LiteRtOpaqueOptionsT *LiteRtOpaqueOptions;
typedef struct LiteRtCompiledModelT *LiteRtCompiledModel;
typedef struct LiteRtTensorBufferT *LiteRtTensorBuffer;
typedef struct LiteRtTensorBufferRequirementsT *LiteRtTensorBufferRequirements;
typedef size_t LiteRtParamIndex;
typedef int LiteRtHwAcceleratorSet;

typedef enum {
    kLiteRtStatusOk = 0,
    kLiteRtStatusErrorInvalidArgument = 1,
    kLiteRtStatusErrorMemoryAllocationFailure = 2,
    kLiteRtStatusErrorRuntimeFailure = 3,
    kLiteRtStatusErrorMissingInputTensor = 4,
    kLiteRtStatusErrorUnsupported = 5,
    kLiteRtStatusErrorNotFound = 6,
    kLiteRtStatusErrorTimeoutExpired = 7,
    kLiteRtStatusErrorWrongVersion = 8,
    kLiteRtStatusErrorUnknown = 9,
    kLiteRtStatusErrorAlreadyExists = 10,
    kLiteRtStatusCancelled = 100,
    kLiteRtStatusErrorFileIO = 500,
    kLiteRtStatusErrorInvalidFlatbuffer = 501,
    kLiteRtStatusErrorDynamicLoading = 502,
    kLiteRtStatusErrorSerialization = 503,
    kLiteRtStatusErrorCompilation = 504,
} LiteRtStatus;

enum {
    kLiteRtHwAcceleratorNone = 0,
    kLiteRtHwAcceleratorCpu = 1 << 0,
    kLiteRtHwAcceleratorGpu = 1 << 1,
};

/* LiteRtDelegatePrecision, the GPU options' `precision`. */
enum { kLiteRtDelegatePrecisionFp16 = 1, kLiteRtDelegatePrecisionFp32 = 2 };

typedef enum {
    kLiteRtTensorBufferLockModeRead = 0,
    kLiteRtTensorBufferLockModeWrite = 1,
} LiteRtTensorBufferLockMode;

enum { kLiteRtTensorBufferTypeHostMemory = 1 };
typedef int LiteRtTensorBufferType;

typedef enum { kLiteRtElementTypeFloat32 = 1 } LiteRtElementType;

typedef enum {
    kLiteRtAnyTypeNone = 0,
    kLiteRtAnyTypeBool = 1,
    kLiteRtAnyTypeInt = 2,
    kLiteRtAnyTypeReal = 3,
    kLiteRtAnyTypeString = 8,
    kLiteRtAnyTypeVoidPtr = 9,
} LiteRtAnyType;

typedef struct {
    LiteRtAnyType type;
    union {
        bool bool_value;
        int64_t int_value;
        double real_value;
        const char *str_value;
        const void *ptr_value;
    };
} LiteRtAny;

/* kLiteRtEnvOptionTagRuntimeLibraryDir: where LiteRT looks for accelerator libraries
 * (libLiteRtWebGpuAccelerator.so on Linux, libLiteRtClGlAccelerator.so on Android). */
typedef enum {
    kLiteRtEnvOptionTagRuntimeLibraryDir = 22,
    kLiteRtEnvOptionTagMinLoggerSeverity = 25,   /* an int: LiteRtLogSeverity */
} LiteRtEnvOptionTag;

/* LiteRtLogSeverity (litert/c/internal/litert_logging.h) */
enum { kLiteRtLogSeverityError = 3, kLiteRtLogSeveritySilent = 4 };

typedef struct {
    LiteRtEnvOptionTag tag;
    LiteRtAny value;
} LiteRtEnvOption;

#define LITERT_TENSOR_MAX_RANK 8
typedef struct {
    unsigned int rank : 7;
    unsigned int has_strides : 1;
    int32_t dimensions[LITERT_TENSOR_MAX_RANK];
    uint32_t strides[LITERT_TENSOR_MAX_RANK];
} LiteRtLayout;

typedef struct {
    LiteRtElementType element_type;
    LiteRtLayout layout;
} LiteRtRankedTensorType;

#if defined(__SIZEOF_POINTER__) && __SIZEOF_POINTER__ == 8
_Static_assert(sizeof(LiteRtAny) == 16, "LiteRtAny layout");
_Static_assert(sizeof(LiteRtEnvOption) == 24, "LiteRtEnvOption layout (LiteRT asserts 24)");
_Static_assert(offsetof(LiteRtEnvOption, value) == 8, "LiteRtEnvOption value offset");
#endif
_Static_assert(sizeof(LiteRtLayout) == 68, "LiteRtLayout layout");
_Static_assert(sizeof(LiteRtRankedTensorType) == 72, "LiteRtRankedTensorType layout");

/* Environment */
LiteRtStatus LiteRtCreateEnvironment(int num_options, const LiteRtEnvOption *options,
                                     LiteRtEnvironment *environment);
void LiteRtDestroyEnvironment(LiteRtEnvironment environment);
/* Meaningful once a model is compiled for the GPU (which creates the GPU environment). */
LiteRtStatus LiteRtEnvironmentSupportsFP16(LiteRtEnvironment environment, bool *is_supported);

/* Model and signatures */
LiteRtStatus LiteRtCreateModelFromFile(LiteRtEnvironment environment, const char *filename,
                                       LiteRtModel *model);
void LiteRtDestroyModel(LiteRtModel model);
LiteRtStatus LiteRtGetModelMetadata(LiteRtModel model, const char *metadata_key, const void **metadata_buffer,
                                    size_t *metadata_buffer_size);
LiteRtStatus LiteRtGetNumModelSignatures(LiteRtModel model, LiteRtParamIndex *num_signatures);
LiteRtStatus LiteRtGetModelSignature(LiteRtModel model, LiteRtParamIndex signature_index,
                                     LiteRtSignature *signature);
LiteRtStatus LiteRtGetSignatureKey(LiteRtSignature signature, const char **signature_key);
LiteRtStatus LiteRtGetNumSignatureInputs(LiteRtSignature signature, LiteRtParamIndex *num_inputs);
LiteRtStatus LiteRtGetSignatureInputName(LiteRtSignature signature, LiteRtParamIndex input_idx,
                                         const char **input_name);
LiteRtStatus LiteRtGetSignatureInputTensorByIndex(LiteRtSignature signature,
                                                  LiteRtParamIndex input_idx, LiteRtTensor *tensor);
LiteRtStatus LiteRtGetNumSignatureOutputs(LiteRtSignature signature, LiteRtParamIndex *num_outputs);
LiteRtStatus LiteRtGetSignatureOutputName(LiteRtSignature signature, LiteRtParamIndex output_idx,
                                          const char **output_name);
LiteRtStatus LiteRtGetSignatureOutputTensorByIndex(LiteRtSignature signature,
                                                   LiteRtParamIndex output_idx, LiteRtTensor *tensor);
LiteRtStatus LiteRtGetRankedTensorType(LiteRtTensor tensor, LiteRtRankedTensorType *ranked_tensor_type);

/* Compilation options; opaque options carry an accelerator's settings as a TOML string. */
LiteRtStatus LiteRtCreateOptions(LiteRtOptions *options);
void LiteRtDestroyOptions(LiteRtOptions options);
LiteRtStatus LiteRtSetOptionsHardwareAccelerators(LiteRtOptions options,
                                                  LiteRtHwAcceleratorSet hardware_accelerators);
LiteRtStatus LiteRtCreateOpaqueOptions(const char *payload_identifier, void *payload_data,
                                       void (*payload_destructor)(void *payload_data),
                                       LiteRtOpaqueOptions *options);
void LiteRtDestroyOpaqueOptions(LiteRtOpaqueOptions options);
/* Takes ownership of opaque_options. */
LiteRtStatus LiteRtAddOpaqueOptions(LiteRtOptions options, LiteRtOpaqueOptions opaque_options);

/* Compiled model */
LiteRtStatus LiteRtCreateCompiledModel(LiteRtEnvironment environment, LiteRtModel model,
                                       LiteRtOptions compilation_options,
                                       LiteRtCompiledModel *compiled_model);
void LiteRtDestroyCompiledModel(LiteRtCompiledModel compiled_model);
LiteRtStatus LiteRtCompiledModelIsFullyAccelerated(LiteRtCompiledModel compiled_model,
                                                   bool *fully_accelerated);
LiteRtStatus LiteRtCompiledModelIsNonCpuFullyAccelerated(LiteRtCompiledModel compiled_model,
                                                         bool *non_cpu_fully_accelerated);
/* The requirements stay owned by the compiled model. */
LiteRtStatus LiteRtGetCompiledModelInputBufferRequirements(
    LiteRtCompiledModel compiled_model, LiteRtParamIndex signature_index, LiteRtParamIndex input_index,
    LiteRtTensorBufferRequirements *buffer_requirements);
LiteRtStatus LiteRtGetCompiledModelOutputBufferRequirements(
    LiteRtCompiledModel compiled_model, LiteRtParamIndex signature_index, LiteRtParamIndex output_index,
    LiteRtTensorBufferRequirements *buffer_requirements);
LiteRtStatus LiteRtRunCompiledModel(LiteRtCompiledModel compiled_model, LiteRtParamIndex signature_index,
                                    size_t num_input_buffers, LiteRtTensorBuffer *input_buffers,
                                    size_t num_output_buffers, LiteRtTensorBuffer *output_buffers);

/* Tensor buffers */
LiteRtStatus LiteRtCreateManagedTensorBufferFromRequirements(LiteRtEnvironment env,
                                                             const LiteRtRankedTensorType *tensor_type,
                                                             LiteRtTensorBufferRequirements requirements,
                                                             LiteRtTensorBuffer *buffer);
void LiteRtDestroyTensorBuffer(LiteRtTensorBuffer buffer);
LiteRtStatus LiteRtGetTensorBufferType(LiteRtTensorBuffer tensor_buffer, LiteRtTensorBufferType *buffer_type);
LiteRtStatus LiteRtGetTensorBufferSize(LiteRtTensorBuffer tensor_buffer, size_t *size);
LiteRtStatus LiteRtLockTensorBuffer(LiteRtTensorBuffer tensor_buffer, void **host_mem_addr,
                                    LiteRtTensorBufferLockMode lock_mode);
LiteRtStatus LiteRtUnlockTensorBuffer(LiteRtTensorBuffer buffer);

#endif
