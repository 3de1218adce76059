# Runs TOOL --help-man and writes its output to OUT; on failure leaves no OUT behind, so the next
# build tries again instead of installing half a page.
#   cmake -DTOOL=bin/gmem-migrate -DOUT=man/gmem-migrate.1 -P render.cmake
execute_process(COMMAND ${TOOL} --help-man OUTPUT_FILE ${OUT}.tmp RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  file(REMOVE ${OUT}.tmp ${OUT})
  message(FATAL_ERROR "${TOOL} --help-man failed (${rc})")
endif()
file(RENAME ${OUT}.tmp ${OUT})
