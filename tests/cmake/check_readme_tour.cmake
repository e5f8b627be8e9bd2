# Fails unless README.md shows tests/c/readme_tour.c and tests/cpp/readme_tour.cpp verbatim, in
# a ```c and a ```cpp block, so the C/C++ tour cannot go stale. Prints README_TOUR_SKIPPED (which
# tests/CMakeLists.txt reports as a skip) while README.md has no such section yet.
#
#   cmake -DREADME=README.md -DC_TOUR=tests/c/readme_tour.c -DCPP_TOUR=tests/cpp/readme_tour.cpp \
#         -P tests/cmake/check_readme_tour.cmake
set(heading "## Five-minute tour: C and C++")
file(READ "${README}" readme)
string(FIND "${readme}" "${heading}" at)
if(at EQUAL -1)
  message("README_TOUR_SKIPPED: ${README} has no \"${heading}\" section yet")
  return()
endif()

set(stale "")
foreach(lang c cpp)
  if(lang STREQUAL "c")
    set(source "${C_TOUR}")
  else()
    set(source "${CPP_TOUR}")
  endif()
  file(READ "${source}" code)
  string(FIND "${readme}" "```${lang}\n${code}```" at)
  if(at EQUAL -1)
    string(APPEND stale "\n  ${source} (expected verbatim in a ```${lang} block)")
  endif()
endforeach()
if(stale)
  message(FATAL_ERROR "${README} is out of date with:${stale}\n"
                      "Copy the files into the \"${heading}\" section unchanged.")
endif()
message("README.md shows both tour programs verbatim")
