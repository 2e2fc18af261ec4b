# The CUDA kernels (docs/gpu.md), included by CMakeLists.txt when LINFER_CUDA is ON:
#   linfer_kernels_cuda   static library of src/kernels/cuda/ (*.cu, plus host-side *.cpp), for sm_90a
#                         (H100 / H200; override with -DCMAKE_CUDA_ARCHITECTURES=...); linked only by what
#                         uses it: tests/cuda and bench/cuda today.
#   tests/cuda/test_*.cpp GoogleTest executables in ctest; they skip (GTEST_SKIP) without a CUDA device.
#   bench/cuda/*.cpp      timing executables, run by tools/gpu_check.sh on a GPU machine.
#   linfer_cuda_model_targets(), called once linfer_models exists (its CUDA backend links this library):
#   tests/cuda/models/test_*.cpp (whole models, CUDA against CPU; skip without a device) and
#   bench/cuda/models/*.cpp (whole-model speed on both devices).
if(NOT DEFINED CMAKE_CUDA_ARCHITECTURES)
  set(CMAKE_CUDA_ARCHITECTURES 90a)
endif()
include(CheckLanguage)
check_language(CUDA)
if(NOT CMAKE_CUDA_COMPILER)
  message(FATAL_ERROR "LINFER_CUDA is ON but CMake found no CUDA compiler: install the CUDA toolkit, or pass "
                      "-DCMAKE_CUDA_COMPILER=/usr/local/cuda/bin/nvcc (or configure without -DLINFER_CUDA=ON)")
endif()
enable_language(CUDA)
set(CMAKE_CUDA_STANDARD 20)
if(NOT CMAKE_CUDA20_STANDARD_COMPILE_OPTION)  # CMake 3.25 knows no C++20 flag for nvcc (headers use std::span)
  set(CMAKE_CUDA20_STANDARD_COMPILE_OPTION "-std=c++20")
  set(CMAKE_CUDA20_EXTENSION_COMPILE_OPTION "-std=c++20")
endif()
find_package(CUDAToolkit REQUIRED)

file(GLOB LINFER_CUDA_SOURCES CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/src/kernels/cuda/*.cu
                                                ${PROJECT_SOURCE_DIR}/src/kernels/cuda/*.cpp)
add_library(linfer_kernels_cuda STATIC ${LINFER_CUDA_SOURCES})
# nvcc rejects the GCC warning flags every target inherits from add_compile_options: replace them.
set_property(TARGET linfer_kernels_cuda PROPERTY COMPILE_OPTIONS
  "$<$<COMPILE_LANGUAGE:CUDA>:-Xcompiler=-Wall,-Wextra,-Wno-unused-parameter;--extended-lambda>"
  "$<$<COMPILE_LANGUAGE:CXX>:-Wall;-Wextra;-Wno-unused-parameter>")
target_link_libraries(linfer_kernels_cuda PUBLIC linfer_kernels CUDA::cudart)

if(LINFER_TESTS)
  enable_testing()
  find_package(GTest REQUIRED)
  include(GoogleTest)
  file(GLOB LINFER_CUDA_TESTS CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/tests/cuda/test_*.cpp)
  foreach(test_src ${LINFER_CUDA_TESTS})
    get_filename_component(test_name ${test_src} NAME_WE)
    add_executable(${test_name} ${test_src})
    target_link_libraries(${test_name} PRIVATE linfer_kernels_cuda GTest::gtest GTest::gtest_main)
    gtest_discover_tests(${test_name} DISCOVERY_MODE PRE_TEST DISCOVERY_TIMEOUT 60
                         WORKING_DIRECTORY ${PROJECT_SOURCE_DIR} PROPERTIES TIMEOUT 900 LABELS cuda)
  endforeach()
endif()

if(LINFER_BENCH)
  file(GLOB LINFER_CUDA_BENCHES CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/bench/cuda/*.cpp)
  foreach(bench_src ${LINFER_CUDA_BENCHES})
    get_filename_component(bench_name ${bench_src} NAME_WE)
    add_executable(gpu_${bench_name} ${bench_src})
    target_link_libraries(gpu_${bench_name} PRIVATE linfer_kernels_cuda)
  endforeach()
endif()

function(linfer_cuda_model_targets)
  if(LINFER_TESTS)
    file(GLOB tests CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/tests/cuda/models/test_*.cpp)
    foreach(test_src ${tests})
      get_filename_component(test_name ${test_src} NAME_WE)
      add_executable(${test_name} ${test_src})
      target_link_libraries(${test_name} PRIVATE linfer_models GTest::gtest GTest::gtest_main)
      gtest_discover_tests(${test_name} DISCOVERY_MODE PRE_TEST DISCOVERY_TIMEOUT 60
                           WORKING_DIRECTORY ${PROJECT_SOURCE_DIR} PROPERTIES TIMEOUT 900 LABELS cuda)
    endforeach()
  endif()
  if(LINFER_BENCH)
    file(GLOB benches CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/bench/cuda/models/*.cpp)
    foreach(bench_src ${benches})
      get_filename_component(bench_name ${bench_src} NAME_WE)
      add_executable(gpu_${bench_name} ${bench_src})
      target_link_libraries(gpu_${bench_name} PRIVATE linfer_models)
    endforeach()
  endif()
endfunction()
