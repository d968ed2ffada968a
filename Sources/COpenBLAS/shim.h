// OpenBLAS's CBLAS interface (Debian: libopenblas-dev, pkg-config "openblas"). Used by the Inference engine
// for its matrix products; `openblas_set_num_threads` pins it to one thread.
#include <cblas.h>
