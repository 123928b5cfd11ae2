# ATW_SANITIZE=address,undefined (or thread) instruments every target of the build.
set(ATW_SANITIZE "" CACHE STRING "Comma-separated sanitizers: address,undefined or thread")
if(ATW_SANITIZE)
  add_compile_options(-fsanitize=${ATW_SANITIZE} -fno-omit-frame-pointer -fno-sanitize-recover=all)
  add_link_options(-fsanitize=${ATW_SANITIZE})
endif()
