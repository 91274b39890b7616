/* SPDX-License-Identifier: MIT */
/* A program that runs a vendor's library (libresnet18-vendor.so): resnet18 with tinynn's code
 * inside that library, not exported. The program sees only the vendor's entry point. */
int resnet18_vendor_main(int argc, char **argv);

int main(int argc, char **argv)
{
	return resnet18_vendor_main(argc, argv);
}
