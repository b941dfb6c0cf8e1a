# BLAKE3 kernels: each instruction set in its own file, compiled with its
# own flags, so the rest of the library stays baseline x86-64 and runs on
# any CPU; src/hash/blake3_dispatch.c picks one at run time. CELLAR_NO_<ISA>
# leaves a kernel out of the build (and out of the dispatch), e.g. for a
# compiler that lacks it. Off x86 only the portable kernel is built.
set(_cellar_x86 FALSE)
if(CMAKE_SYSTEM_PROCESSOR MATCHES "^(x86_64|AMD64|amd64|i[3-6]86)$")
  set(_cellar_x86 TRUE)
endif()

set(_cellar_isa_flags_sse41 "-msse4.1")
set(_cellar_isa_flags_avx2 "-mavx2")
set(_cellar_isa_flags_avx512 -mavx512f -mavx512vl)

# The kernels are straight-line arithmetic on registers; -O3 makes them
# 10-40% faster than -O2 (measured with GCC 12), so optimized builds get it
# whatever CMAKE_BUILD_TYPE says. Debug builds keep their -O0.
set(_cellar_kernel_opt $<$<NOT:$<CONFIG:Debug>>:-O3>)
set_source_files_properties(${PROJECT_SOURCE_DIR}/src/hash/blake3_portable.c
                            PROPERTIES COMPILE_OPTIONS "${_cellar_kernel_opt}")

foreach(isa sse41 avx2 avx512)
  string(TOUPPER ${isa} ISA)
  set(file ${PROJECT_SOURCE_DIR}/src/hash/blake3_${isa}.c)
  if(NOT _cellar_x86 OR CELLAR_NO_${ISA})
    list(REMOVE_ITEM CELLAR_SRC_hash ${file})
    add_compile_definitions(CELLAR_NO_${ISA})
  else()
    set_source_files_properties(${file} PROPERTIES
                                COMPILE_OPTIONS "${_cellar_isa_flags_${isa}};${_cellar_kernel_opt}")
  endif()
endforeach()
