/* SPDX-License-Identifier: EPL-2.0 OR BSD-3-Clause */
