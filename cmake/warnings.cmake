# Warnings for the project's own targets, as an INTERFACE target to link.
add_library(atw_warnings INTERFACE)
target_compile_options(atw_warnings INTERFACE -Wall -Wextra -Wpedantic -Wshadow
  -Wnon-virtual-dtor -Wold-style-cast -Wcast-align -Woverloaded-virtual -Wnull-dereference
  -Wimplicit-fallthrough)
option(ATW_WERROR "Treat warnings as errors" OFF)
if(ATW_WERROR)
  target_compile_options(atw_warnings INTERFACE -Werror)
endif()
