#include <stdio.h>

int main(void) {
    puts("hello from a static binary built by kiln");
    return 0;
}
